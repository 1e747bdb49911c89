// The log's declarations are public (<hutopia/log.h>): the daemons and
// embedding programs set its level and format.
#ifndef HUTOPIA_UTIL_LOG_H_
#define HUTOPIA_UTIL_LOG_H_

#include <hutopia/log.h>

#endif  // HUTOPIA_UTIL_LOG_H_
