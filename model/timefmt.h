/* timefmt.h - RFC 3339 timestamps (OCI annotations) to time_t and back. */
#ifndef CHARTFS_TIMEFMT_H
#define CHARTFS_TIMEFMT_H

#include <stddef.h>
#include <time.h>

/* Parse "2006-01-02T15:04:05[.frac](Z|+hh:mm|-hh:mm)"; 0 if malformed. */
time_t timefmt_parse_rfc3339(const char *s);
/* Format t as "2006-01-02T15:04:05Z" into buf. */
void timefmt_rfc3339(time_t t, char *buf, size_t len);

#endif
