/* Names for the error codes of err.h, for logs and API answers. */
#include "core/err.h"

const char *err_str(int err)
{
	switch (err) {
	case M_OK: return "ok";
	case M_ENOMEM: return "out of memory";
	case M_EINVAL: return "invalid argument";
	case M_EPARSE: return "malformed input";
	case M_EIO: return "i/o error";
	case M_ELIMIT: return "limit reached";
	case M_ENOTFOUND: return "not found";
	case M_EAGAIN: return "try again";
	case M_ECLOSED: return "closed";
	case M_EUNSUPP: return "not supported";
	case M_EAUTH: return "authentication failed";
	}
	return "unknown error";
}
