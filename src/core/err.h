/*
 * One error type for all of mamori: functions return 0 or one of these
 * negative codes; err_str() names them for logs and API answers.
 */
#ifndef MAMORI_ERR_H
#define MAMORI_ERR_H

enum m_err {
	M_OK = 0,
	M_ENOMEM = -1,   /* allocation failed or an arena hit its cap */
	M_EINVAL = -2,   /* bad argument or configuration */
	M_EPARSE = -3,   /* malformed input */
	M_EIO = -4,      /* system call or library I/O failure */
	M_ELIMIT = -5,   /* a hard bound was reached */
	M_ENOTFOUND = -6,
	M_EAGAIN = -7,   /* would block / try again */
	M_ECLOSED = -8,  /* queue or connection closed */
	M_EUNSUPP = -9,  /* recognised but not supported */
	M_EAUTH = -10,   /* authentication failed */
};

const char *err_str(int err);

#endif
