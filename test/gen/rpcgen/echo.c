/*
 * Byte-compatibility harness around rpcgen's C routines for one .x file (built by build.sh).
 * stdin lines:
 *   "<type> <hex>"          decode with rpcgen, encode the decoded value again: "OK <hex>" or "ERR <why>"
 *   "!gen <type> <count>"   fill <count> random C values and encode them: one "OK <hex>" line each
 * types.inc (written by the test) holds the random generators and TYPE_TABLE for that file's types.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <rpc/rpc.h>
#include "prot.h"

struct xdr_type {
	const char *name;
	xdrproc_t proc;
	size_t size;
	void (*generate)(void *, int);
};

#include "types.inc"

static const struct xdr_type types[] = {
	TYPE_TABLE
	{ NULL, NULL, 0, NULL }
};

static const struct xdr_type *find_type(const char *name)
{
	const struct xdr_type *t;
	for (t = types; t->name != NULL && strcmp(t->name, name) != 0; t++)
		;
	return t->name == NULL ? NULL : t;
}

static void encode_and_print(const struct xdr_type *t, void *obj, unsigned char *out, u_int size)
{
	XDR enc;
	u_int i, n;
	xdrmem_create(&enc, (char *)out, size, XDR_ENCODE);
	if (!t->proc(&enc, obj)) {
		puts("ERR encode");
		return;
	}
	n = xdr_getpos(&enc);
	fputs("OK ", stdout);
	for (i = 0; i < n; i++) printf("%02x", out[i]);
	putchar('\n');
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	return -1;
}

int main(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t got;
	static unsigned char in[1 << 20], out[1 << 20];

	while ((got = getline(&line, &cap, stdin)) > 0) {
		char *space = strchr(line, ' ');
		const struct xdr_type *t;
		size_t len = 0;
		char *p;
		void *obj;
		XDR dec;

		if (space == NULL) { puts("ERR syntax"); continue; }
		*space = '\0';
		if (strcmp(line, "!gen") == 0) {
			char name[256];
			int count, k;
			if (sscanf(space + 1, "%255s %d", name, &count) != 2 || (t = find_type(name)) == NULL) {
				puts("ERR syntax");
				continue;
			}
			for (k = 0; k < count; k++) {
				obj = calloc(1, t->size);
				t->generate(obj, 0);
				encode_and_print(t, obj, out, sizeof(out));
				xdr_free(t->proc, obj);
				free(obj);
			}
			continue;
		}
		t = find_type(line);
		if (t == NULL) { puts("ERR unknown type"); continue; }
		for (p = space + 1; hexval(p[0]) >= 0 && hexval(p[1]) >= 0 && len < sizeof(in); p += 2)
			in[len++] = (unsigned char)(hexval(p[0]) * 16 + hexval(p[1]));

		obj = calloc(1, t->size);
		xdrmem_create(&dec, (char *)in, (u_int)len, XDR_DECODE);
		if (!t->proc(&dec, obj)) {
			puts("ERR decode");
		} else if (xdr_getpos(&dec) != len) {
			puts("ERR trailing bytes");
		} else {
			encode_and_print(t, obj, out, sizeof(out));
		}
		xdr_free(t->proc, obj);
		free(obj);
	}
	free(line);
	return 0;
}
