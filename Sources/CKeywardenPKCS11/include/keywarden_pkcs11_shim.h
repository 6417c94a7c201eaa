/*
 * The few calls Keywarden makes into a PKCS#11 module, in C so that the Swift side never builds attribute templates or
 * mechanism parameters by hand. Every function checks that the module has the entry point (CKR_FUNCTION_NOT_SUPPORTED
 * otherwise) and passes the module's return value through.
 */
#ifndef KEYWARDEN_PKCS11_SHIM_H
#define KEYWARDEN_PKCS11_SHIM_H

#include "keywarden_pkcs11.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Loads the module at `path` (dlopen, RTLD_NOW | RTLD_LOCAL) and asks it for its function list. Returns 0 and sets
 * `*handle` and `*functions`; otherwise returns nonzero and writes a one-line reason into `reason`. The library stays
 * loaded for the life of the process (a module may not survive being unloaded). */
int kw_p11_load(const char *path, void **handle, CK_FUNCTION_LIST_PTR *functions, char *reason, size_t reasonCapacity);

/* C_Initialize with CKF_OS_LOCKING_OK (the module may use the operating system's locks; the caller calls it from
 * several threads), and C_Finalize. */
CK_RV kw_p11_initialize(CK_FUNCTION_LIST_PTR functions);
CK_RV kw_p11_finalize(CK_FUNCTION_LIST_PTR functions);

/* The slots with a token present: `*count` in, the capacity of `slots`; out, how many there are. */
CK_RV kw_p11_slots_with_token(CK_FUNCTION_LIST_PTR functions, CK_SLOT_ID *slots, CK_ULONG *count);
CK_RV kw_p11_token_info(CK_FUNCTION_LIST_PTR functions, CK_SLOT_ID slot, CK_TOKEN_INFO *info);

/* A serial read-write session on `slot`; closing it. */
CK_RV kw_p11_open_session(CK_FUNCTION_LIST_PTR functions, CK_SLOT_ID slot, CK_SESSION_HANDLE *session);
CK_RV kw_p11_close_session(CK_FUNCTION_LIST_PTR functions, CK_SESSION_HANDLE session);

/* C_GetSessionInfo: whether the session (and its token) is still there. */
CK_RV kw_p11_session_info(CK_FUNCTION_LIST_PTR functions, CK_SESSION_HANDLE session, CK_SESSION_INFO *info);

/* C_Login as the normal user (CKU_USER). */
CK_RV kw_p11_login_user(CK_FUNCTION_LIST_PTR functions, CK_SESSION_HANDLE session, const CK_BYTE *pin, CK_ULONG pinLength);

/* The secret keys whose CKA_LABEL is `label` (at most `capacity`; `*count` says how many were found). */
CK_RV kw_p11_find_secret_keys(CK_FUNCTION_LIST_PTR functions, CK_SESSION_HANDLE session, const CK_BYTE *label,
                              CK_ULONG labelLength, CK_OBJECT_HANDLE *keys, CK_ULONG capacity, CK_ULONG *count);

/* A token-resident, private, sensitive, non-extractable AES key of `byteCount` bytes labelled `label`
 * (CKM_AES_KEY_GEN), whose CKA_ENCRYPT and CKA_DECRYPT are as given and CKA_WRAP / CKA_UNWRAP follow them. */
CK_RV kw_p11_generate_aes_key(CK_FUNCTION_LIST_PTR functions, CK_SESSION_HANDLE session, const CK_BYTE *label,
                              CK_ULONG labelLength, CK_ULONG byteCount, CK_BBOOL encrypt, CK_BBOOL decrypt, CK_OBJECT_HANDLE *key);

/* C_DestroyObject. */
CK_RV kw_p11_destroy_object(CK_FUNCTION_LIST_PTR functions, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object);

/* One CK_BBOOL or CK_ULONG attribute of an object. */
CK_RV kw_p11_bool_attribute(CK_FUNCTION_LIST_PTR functions, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                            CK_ATTRIBUTE_TYPE type, CK_BBOOL *value);
CK_RV kw_p11_ulong_attribute(CK_FUNCTION_LIST_PTR functions, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                             CK_ATTRIBUTE_TYPE type, CK_ULONG *value);

/* Asks for an object's CKA_VALUE into `buffer` (`*length` in: its capacity; out: what the module says). A sensitive or
 * non-extractable key must refuse (CKR_ATTRIBUTE_SENSITIVE); used to prove that it does. */
CK_RV kw_p11_value_attribute(CK_FUNCTION_LIST_PTR functions, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                             CK_BYTE *buffer, CK_ULONG *length);

/* C_GenerateRandom. */
CK_RV kw_p11_generate_random(CK_FUNCTION_LIST_PTR functions, CK_SESSION_HANDLE session, CK_BYTE *buffer, CK_ULONG length);

/* One whole CKM_AES_GCM operation (C_EncryptInit + C_Encrypt, or C_DecryptInit + C_Decrypt) with `key`, the IV, the
 * additional data and a tag of `tagBits`. `*outputLength` in: the capacity of `output`; out: the length written.
 * A ciphertext is the encrypted bytes followed by the tag.
 *
 * When the module answers CKR_BUFFER_TOO_SMALL (the operation then stays active), the operation is finished into a
 * scratch buffer that is wiped and freed, and CKR_BUFFER_TOO_SMALL is returned with `*outputLength` set to the length
 * needed: the session is left with no operation active. `*failedAtInit` says whether the failure was C_EncryptInit's or
 * C_DecryptInit's (the key or the parameters refused) rather than the operation's. */
CK_RV kw_p11_aes_gcm_encrypt(CK_FUNCTION_LIST_PTR functions, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key,
                             const CK_BYTE *iv, CK_ULONG ivLength, const CK_BYTE *aad, CK_ULONG aadLength, CK_ULONG tagBits,
                             const CK_BYTE *input, CK_ULONG inputLength, CK_BYTE *output, CK_ULONG *outputLength,
                             CK_BBOOL *failedAtInit);
CK_RV kw_p11_aes_gcm_decrypt(CK_FUNCTION_LIST_PTR functions, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key,
                             const CK_BYTE *iv, CK_ULONG ivLength, const CK_BYTE *aad, CK_ULONG aadLength, CK_ULONG tagBits,
                             const CK_BYTE *input, CK_ULONG inputLength, CK_BYTE *output, CK_ULONG *outputLength,
                             CK_BBOOL *failedAtInit);

/* Wipes `length` bytes at `buffer` in a way the compiler does not remove. */
void kw_p11_wipe(void *buffer, size_t length);

#ifdef __cplusplus
}
#endif

#endif /* KEYWARDEN_PKCS11_SHIM_H */
