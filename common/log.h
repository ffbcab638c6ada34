/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log — the structured log lines of the agent and the exporters it runs, on
 * stderr (journald picks them up when run as a service):
 * `level=warn msg="..."`. One global level.
 */
#ifndef STOKE_LOG_H
#define STOKE_LOG_H

#include <stdbool.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
/* Parses "error", "warn", "info", "debug". 0 or -EINVAL. */
int log_parse_level(const char *s, enum log_level *out);
bool log_level_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
