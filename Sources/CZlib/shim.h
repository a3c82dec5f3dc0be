// zlib, exposed to Swift as a system library target (Debian package zlib1g-dev).
#include <zlib.h>
