/*
 * hex.h - bytes as lowercase hex, the one spelling of digests, serials
 * and key identifiers in variables, API objects and file names.
 */
#ifndef MTLS_HEX_H
#define MTLS_HEX_H

#include <stddef.h>
#include <stdint.h>

/* n bytes of `in` into 2n hex digits and a NUL (out: 2n + 1 bytes). */
static inline void hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

#endif /* MTLS_HEX_H */
