#include "keywarden_pkcs11_shim.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kw_p11_load(const char *path, void **handle, CK_FUNCTION_LIST_PTR *functions, char *reason, size_t reasonCapacity) {
    *handle = NULL;
    *functions = NULL;
    void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        const char *error = dlerror();
        snprintf(reason, reasonCapacity, "%s", error != NULL ? error : "dlopen failed");
        return 1;
    }
    CK_C_GetFunctionList getFunctionList = NULL;
    void *symbol = dlsym(library, "C_GetFunctionList");
    if (symbol == NULL) {
        snprintf(reason, reasonCapacity, "the library has no C_GetFunctionList: it is not a PKCS#11 module");
        return 2;
    }
    memcpy(&getFunctionList, &symbol, sizeof getFunctionList);
    CK_FUNCTION_LIST_PTR list = NULL;
    CK_RV rv = getFunctionList(&list);
    if (rv != CKR_OK || list == NULL) {
        snprintf(reason, reasonCapacity, "C_GetFunctionList failed (0x%08lX)", rv);
        return 3;
    }
    if (list->version.major != 2) {
        snprintf(reason, reasonCapacity, "the module's function list is of Cryptoki %u.%u, not 2.x", list->version.major,
                 list->version.minor);
        return 4;
    }
    *handle = library;
    *functions = list;
    return 0;
}

#define REQUIRE(name) \
    do { \
        if (functions == NULL || functions->name == NULL) return CKR_FUNCTION_NOT_SUPPORTED; \
    } while (0)

CK_RV kw_p11_initialize(CK_FUNCTION_LIST_PTR functions) {
    REQUIRE(C_Initialize);
    CK_C_INITIALIZE_ARGS arguments;
    memset(&arguments, 0, sizeof arguments);
    arguments.flags = CKF_OS_LOCKING_OK;
    return functions->C_Initialize(&arguments);
}

CK_RV kw_p11_finalize(CK_FUNCTION_LIST_PTR functions) {
    REQUIRE(C_Finalize);
    return functions->C_Finalize(NULL);
}

CK_RV kw_p11_slots_with_token(CK_FUNCTION_LIST_PTR functions, CK_SLOT_ID *slots, CK_ULONG *count) {
    REQUIRE(C_GetSlotList);
    return functions->C_GetSlotList(CK_TRUE, slots, count);
}

CK_RV kw_p11_token_info(CK_FUNCTION_LIST_PTR functions, CK_SLOT_ID slot, CK_TOKEN_INFO *info) {
    REQUIRE(C_GetTokenInfo);
    return functions->C_GetTokenInfo(slot, info);
}

CK_RV kw_p11_open_session(CK_FUNCTION_LIST_PTR functions, CK_SLOT_ID slot, CK_SESSION_HANDLE *session) {
    REQUIRE(C_OpenSession);
    return functions->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, session);
}

CK_RV kw_p11_close_session(CK_FUNCTION_LIST_PTR functions, CK_SESSION_HANDLE session) {
    REQUIRE(C_CloseSession);
    return functions->C_CloseSession(session);
}

CK_RV kw_p11_session_info(CK_FUNCTION_LIST_PTR functions, CK_SESSION_HANDLE session, CK_SESSION_INFO *info) {
    REQUIRE(C_GetSessionInfo);
    return functions->C_GetSessionInfo(session, info);
}

CK_RV kw_p11_login_user(CK_FUNCTION_LIST_PTR functions, CK_SESSION_HANDLE session, const CK_BYTE *pin, CK_ULONG pinLength) {
    REQUIRE(C_Login);
    return functions->C_Login(session, CKU_USER, (CK_UTF8CHAR_PTR)pin, pinLength);
}

CK_RV kw_p11_find_secret_keys(CK_FUNCTION_LIST_PTR functions, CK_SESSION_HANDLE session, const CK_BYTE *label,
                              CK_ULONG labelLength, CK_OBJECT_HANDLE *keys, CK_ULONG capacity, CK_ULONG *count) {
    REQUIRE(C_FindObjectsInit);
    REQUIRE(C_FindObjects);
    REQUIRE(C_FindObjectsFinal);
    CK_OBJECT_CLASS keyClass = CKO_SECRET_KEY;
    CK_ATTRIBUTE template[] = {
        {CKA_CLASS, &keyClass, sizeof keyClass},
        {CKA_LABEL, (CK_VOID_PTR)label, labelLength},
    };
    *count = 0;
    CK_RV rv = functions->C_FindObjectsInit(session, template, sizeof template / sizeof template[0]);
    if (rv != CKR_OK) return rv;
    rv = functions->C_FindObjects(session, keys, capacity, count);
    CK_RV final = functions->C_FindObjectsFinal(session);
    return rv != CKR_OK ? rv : final;
}

CK_RV kw_p11_generate_aes_key(CK_FUNCTION_LIST_PTR functions, CK_SESSION_HANDLE session, const CK_BYTE *label,
                              CK_ULONG labelLength, CK_ULONG byteCount, CK_BBOOL encrypt, CK_BBOOL decrypt, CK_OBJECT_HANDLE *key) {
    REQUIRE(C_GenerateKey);
    CK_OBJECT_CLASS keyClass = CKO_SECRET_KEY;
    CK_KEY_TYPE keyType = CKK_AES;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE template[] = {
        {CKA_CLASS, &keyClass, sizeof keyClass},
        {CKA_KEY_TYPE, &keyType, sizeof keyType},
        {CKA_VALUE_LEN, &byteCount, sizeof byteCount},
        {CKA_LABEL, (CK_VOID_PTR)label, labelLength},
        {CKA_TOKEN, &yes, sizeof yes},
        {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_SENSITIVE, &yes, sizeof yes},
        {CKA_EXTRACTABLE, &no, sizeof no},
        {CKA_ENCRYPT, &encrypt, sizeof encrypt},
        {CKA_DECRYPT, &decrypt, sizeof decrypt},
        {CKA_WRAP, &encrypt, sizeof encrypt},
        {CKA_UNWRAP, &decrypt, sizeof decrypt},
        {CKA_SIGN, &no, sizeof no},
        {CKA_VERIFY, &no, sizeof no},
    };
    CK_MECHANISM mechanism = {CKM_AES_KEY_GEN, NULL, 0};
    return functions->C_GenerateKey(session, &mechanism, template, sizeof template / sizeof template[0], key);
}

CK_RV kw_p11_destroy_object(CK_FUNCTION_LIST_PTR functions, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object) {
    REQUIRE(C_DestroyObject);
    return functions->C_DestroyObject(session, object);
}

CK_RV kw_p11_bool_attribute(CK_FUNCTION_LIST_PTR functions, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                            CK_ATTRIBUTE_TYPE type, CK_BBOOL *value) {
    REQUIRE(C_GetAttributeValue);
    CK_ATTRIBUTE attribute = {type, value, sizeof *value};
    return functions->C_GetAttributeValue(session, object, &attribute, 1);
}

CK_RV kw_p11_ulong_attribute(CK_FUNCTION_LIST_PTR functions, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                             CK_ATTRIBUTE_TYPE type, CK_ULONG *value) {
    REQUIRE(C_GetAttributeValue);
    CK_ATTRIBUTE attribute = {type, value, sizeof *value};
    return functions->C_GetAttributeValue(session, object, &attribute, 1);
}

CK_RV kw_p11_value_attribute(CK_FUNCTION_LIST_PTR functions, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                             CK_BYTE *buffer, CK_ULONG *length) {
    REQUIRE(C_GetAttributeValue);
    CK_ATTRIBUTE attribute = {CKA_VALUE, buffer, *length};
    CK_RV rv = functions->C_GetAttributeValue(session, object, &attribute, 1);
    *length = attribute.ulValueLen;
    return rv;
}

CK_RV kw_p11_generate_random(CK_FUNCTION_LIST_PTR functions, CK_SESSION_HANDLE session, CK_BYTE *buffer, CK_ULONG length) {
    REQUIRE(C_GenerateRandom);
    return functions->C_GenerateRandom(session, buffer, length);
}

void kw_p11_wipe(void *buffer, size_t length) {
    volatile unsigned char *bytes = (volatile unsigned char *)buffer;
    while (length > 0) {
        *bytes++ = 0;
        length--;
    }
}

typedef CK_RV (*kw_init_function)(CK_SESSION_HANDLE, CK_MECHANISM *, CK_OBJECT_HANDLE);
typedef CK_RV (*kw_crypt_function)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);

/* Init, then the single-part call; a CKR_BUFFER_TOO_SMALL finishes the operation into wiped scratch memory. */
static CK_RV kw_aes_gcm(kw_init_function init, kw_crypt_function crypt, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key,
                        const CK_BYTE *iv, CK_ULONG ivLength, const CK_BYTE *aad, CK_ULONG aadLength, CK_ULONG tagBits,
                        const CK_BYTE *input, CK_ULONG inputLength, CK_BYTE *output, CK_ULONG *outputLength,
                        CK_BBOOL *failedAtInit) {
    *failedAtInit = CK_FALSE;
    CK_GCM_PARAMS parameters = {(CK_BYTE_PTR)iv, ivLength, ivLength * 8, (CK_BYTE_PTR)aad, aadLength, tagBits};
    CK_MECHANISM mechanism = {CKM_AES_GCM, &parameters, sizeof parameters};
    CK_RV rv = init(session, &mechanism, key);
    if (rv != CKR_OK) {
        *failedAtInit = CK_TRUE;
        return rv;
    }
    CK_ULONG capacity = *outputLength;
    rv = crypt(session, (CK_BYTE_PTR)input, inputLength, output, outputLength);
    if (rv != CKR_BUFFER_TOO_SMALL) return rv;
    CK_ULONG needed = *outputLength > capacity ? *outputLength : capacity + 64;
    CK_BYTE *scratch = malloc(needed);
    if (scratch != NULL) {
        CK_ULONG scratchLength = needed;
        (void)crypt(session, (CK_BYTE_PTR)input, inputLength, scratch, &scratchLength);
        kw_p11_wipe(scratch, needed);
        free(scratch);
    }
    *outputLength = needed;
    return CKR_BUFFER_TOO_SMALL;
}

CK_RV kw_p11_aes_gcm_encrypt(CK_FUNCTION_LIST_PTR functions, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key,
                             const CK_BYTE *iv, CK_ULONG ivLength, const CK_BYTE *aad, CK_ULONG aadLength, CK_ULONG tagBits,
                             const CK_BYTE *input, CK_ULONG inputLength, CK_BYTE *output, CK_ULONG *outputLength,
                             CK_BBOOL *failedAtInit) {
    *failedAtInit = CK_TRUE;
    REQUIRE(C_EncryptInit);
    REQUIRE(C_Encrypt);
    return kw_aes_gcm(functions->C_EncryptInit, functions->C_Encrypt, session, key, iv, ivLength, aad, aadLength, tagBits,
                      input, inputLength, output, outputLength, failedAtInit);
}

CK_RV kw_p11_aes_gcm_decrypt(CK_FUNCTION_LIST_PTR functions, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key,
                             const CK_BYTE *iv, CK_ULONG ivLength, const CK_BYTE *aad, CK_ULONG aadLength, CK_ULONG tagBits,
                             const CK_BYTE *input, CK_ULONG inputLength, CK_BYTE *output, CK_ULONG *outputLength,
                             CK_BBOOL *failedAtInit) {
    *failedAtInit = CK_TRUE;
    REQUIRE(C_DecryptInit);
    REQUIRE(C_Decrypt);
    return kw_aes_gcm(functions->C_DecryptInit, functions->C_Decrypt, session, key, iv, ivLength, aad, aadLength, tagBits,
                      input, inputLength, output, outputLength, failedAtInit);
}
