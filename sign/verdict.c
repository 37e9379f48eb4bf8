/* verdict.c - a signature check's conclusion in words, and which of two to
 * report. */
#include "sign/verdict.h"

const char *sign_verdict_str(enum sign_verdict v)
{
	switch (v) {
	case SIGN_OK:
		return "verified";
	case SIGN_NONE:
		return "no signature";
	case SIGN_WRONG_KEY:
		return "signed by another key";
	case SIGN_OTHER_DIGEST:
		return "signature for another digest";
	case SIGN_BAD_SIG:
		return "bad signature";
	case SIGN_BROKEN:
		return "broken signature or provenance";
	}
	return "unknown verdict";
}

/* Lower is what a log line should say: a verified chart first, then the
 * failure that tells the user most about what went wrong. */
static int rank(enum sign_verdict v)
{
	switch (v) {
	case SIGN_OK:
		return 0;
	case SIGN_BAD_SIG:
		return 1;
	case SIGN_OTHER_DIGEST:
		return 2;
	case SIGN_WRONG_KEY:
		return 3;
	case SIGN_BROKEN:
		return 4;
	case SIGN_NONE:
		return 5;
	}
	return 6;
}

enum sign_verdict sign_verdict_best(enum sign_verdict a, enum sign_verdict b)
{
	return rank(b) < rank(a) ? b : a;
}
