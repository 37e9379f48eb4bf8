/*
 * fdlimit.h - the daemon's descriptor limit.
 *
 * Contract: call once at start, before threads. Best effort: a failure is
 * one log line and changes nothing.
 */
#ifndef CHARTFS_FDLIMIT_H
#define CHARTFS_FDLIMIT_H

/* Raise the soft RLIMIT_NOFILE to the hard limit, as a daemon that holds
 * pooled connections and cached files open must (systemd leaves the soft
 * limit at 1024 for select(2)'s sake; chartfs never calls select). */
void fdlimit_raise(void);

#endif
