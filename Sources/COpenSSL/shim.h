#ifndef CONVEYOR_COPENSSL_SHIM_H
#define CONVEYOR_COPENSSL_SHIM_H
// The only header Swift sees of OpenSSL's libcrypto: SHA-256 for the built-in `sha256` task, and
// HMAC-SHA256 for webhook signatures (Sources/Webhooks).
// SHA256_Init/Update/Final are deprecated in OpenSSL 3 but are still its fastest way to hash many
// tiny inputs (no per-call algorithm lookup, no allocation); this asks for them without warnings.
#define OPENSSL_API_COMPAT 10101
#include <openssl/sha.h>
#include <openssl/hmac.h>
#include <openssl/evp.h>
#endif
