/* verdict.c - STUB until issue 17's core lands. */
#include "sign/verdict.h"

const char *sign_verdict_str(enum sign_verdict v)
{
	return v == SIGN_OK ? "verified" : "not verified";
}
enum sign_verdict sign_verdict_best(enum sign_verdict a, enum sign_verdict b)
{
	return a == SIGN_OK ? a : b;
}
