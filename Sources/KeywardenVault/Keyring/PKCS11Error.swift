import CKeywardenPKCS11

/// Why a call to a PKCS#11 token failed. Descriptions name the problem and what to check; they never contain a PIN, a
/// plaintext, a key or a ciphertext (token and key labels, module paths and return codes only).
public enum PKCS11Error: Error, Sendable, Equatable, CustomStringConvertible {
    /// A setting or an argument is missing or invalid; `setting` names the environment variable (or the parameter).
    case configuration(setting: String, problem: String)
    /// The module (the vendor's shared library) could not be loaded, is not a PKCS#11 module, or did not initialize.
    case moduleNotLoadable(path: String, reason: String)
    /// No slot holds an initialized token with this label.
    case tokenNotFound(label: String)
    /// The token refused the user PIN (`CKR_PIN_INCORRECT`, `CKR_PIN_INVALID`, `CKR_PIN_LEN_RANGE`).
    case wrongPIN
    /// The token's user PIN is locked (`CKR_PIN_LOCKED`, or the token says so): the security officer must unlock it.
    case pinLocked
    /// The token holds no secret key with this label (visible to the logged-in user).
    case keyNotFound(label: String)
    /// More than one secret key has this label (finding it), or one already has (generating one).
    case keyLabelNotUnique(label: String, count: Int)
    /// The key exists but may not be used so: not an AES key, or its attributes forbid the operation
    /// (`CKR_KEY_FUNCTION_NOT_PERMITTED`, `CKR_KEY_TYPE_INCONSISTENT`, `CKR_KEY_HANDLE_INVALID`…).
    case keyNotUsable(label: String, reason: String)
    /// A ciphertext did not open: tampered or truncated bytes, other associated data, or another key.
    case decryptionFailed(detail: String)
    /// The token or its session went away: removed, not present, its session closed or invalid, the module finalized.
    /// Opening the token again may work.
    case deviceGone(operation: String, returnValue: PKCS11ReturnValue)
    /// The token was closed by ``PKCS11Token/close()``.
    case closed
    /// Any other refusal of the module, with its return value.
    case failed(operation: String, returnValue: PKCS11ReturnValue)

    /// A stable code for logs and tests.
    public var code: String {
        switch self {
        case .configuration: return "pkcs11_configuration"
        case .moduleNotLoadable: return "pkcs11_module_not_loadable"
        case .tokenNotFound: return "pkcs11_token_not_found"
        case .wrongPIN: return "pkcs11_wrong_pin"
        case .pinLocked: return "pkcs11_pin_locked"
        case .keyNotFound: return "pkcs11_key_not_found"
        case .keyLabelNotUnique: return "pkcs11_key_label_not_unique"
        case .keyNotUsable: return "pkcs11_key_not_usable"
        case .decryptionFailed: return "pkcs11_decryption_failed"
        case .deviceGone: return "pkcs11_device_gone"
        case .closed: return "pkcs11_closed"
        case .failed: return "pkcs11_failed"
        }
    }

    /// Whether the same call may succeed after the token is opened again (the device or its session went away).
    public var isTransient: Bool {
        if case .deviceGone = self { return true }
        return false
    }

    /// What went wrong and what to check, in one line (never a PIN or a plaintext).
    public var description: String {
        switch self {
        case .configuration(let setting, let problem):
            return "the PKCS#11 configuration is not usable: \(setting) \(problem)"
        case .moduleNotLoadable(let path, let reason):
            return "the PKCS#11 module \(path) cannot be loaded (\(reason)); check KEYWARDEN_MASTER_KEY_PKCS11_MODULE"
        case .tokenNotFound(let label):
            return "no PKCS#11 slot holds a token labelled '\(label)'; check KEYWARDEN_MASTER_KEY_PKCS11_TOKEN and that the device is present"
        case .wrongPIN:
            return "the PKCS#11 token refused the user PIN; check the file KEYWARDEN_MASTER_KEY_PKCS11_PIN_FILE names"
        case .pinLocked:
            return "the PKCS#11 token's user PIN is locked; its security officer must unlock or reset it"
        case .keyNotFound(let label):
            return "the PKCS#11 token holds no secret key labelled '\(label)'; check KEYWARDEN_MASTER_KEY_PKCS11_KEY_LABEL"
        case .keyLabelNotUnique(let label, let count):
            return "\(count) secret keys on the PKCS#11 token are labelled '\(label)'; a label must name one key"
        case .keyNotUsable(let label, let reason):
            return "the PKCS#11 key '\(label)' cannot be used for this: \(reason)"
        case .decryptionFailed(let detail):
            return "the ciphertext does not open (\(detail)): another key, other associated data, or tampered bytes"
        case .deviceGone(let operation, let returnValue):
            return "the PKCS#11 token is gone (\(operation): \(returnValue)); check the device, then open it again"
        case .closed:
            return "the PKCS#11 token was closed"
        case .failed(let operation, let returnValue):
            return "the PKCS#11 module refused \(operation): \(returnValue)"
        }
    }

    /// The return values that mean the token, its slot or the session is no longer there.
    static let goneValues: Set<UInt> = [
        UInt(CKR_DEVICE_REMOVED), UInt(CKR_DEVICE_ERROR), UInt(CKR_TOKEN_NOT_PRESENT), UInt(CKR_TOKEN_NOT_RECOGNIZED),
        UInt(CKR_SESSION_HANDLE_INVALID), UInt(CKR_SESSION_CLOSED), UInt(CKR_SLOT_ID_INVALID), UInt(CKR_CRYPTOKI_NOT_INITIALIZED),
    ]

    /// The error a return value other than `CKR_OK` stands for, when no operation-specific meaning applies:
    /// the device gone, a PIN refused or locked, else ``failed(operation:returnValue:)``.
    static func classify(_ value: CK_RV, operation: String) -> PKCS11Error {
        let returnValue = PKCS11ReturnValue(UInt(value))
        switch value {
        case _ where goneValues.contains(UInt(value)):
            return .deviceGone(operation: operation, returnValue: returnValue)
        case CK_RV(CKR_PIN_INCORRECT), CK_RV(CKR_PIN_INVALID), CK_RV(CKR_PIN_LEN_RANGE):
            return .wrongPIN
        case CK_RV(CKR_PIN_LOCKED):
            return .pinLocked
        default:
            return .failed(operation: operation, returnValue: returnValue)
        }
    }
}

/// A PKCS#11 return value (`CK_RV`), shown as its name when known and always in hex: `CKR_PIN_INCORRECT (0x000000A0)`.
public struct PKCS11ReturnValue: Sendable, Hashable, CustomStringConvertible {
    /// The value as the module returned it.
    public let rawValue: UInt

    /// A return value as the module returned it.
    public init(_ rawValue: UInt) {
        self.rawValue = rawValue
    }

    /// The specification's name of the value (`CKR_PIN_INCORRECT`), or nil for one this code does not name.
    public var name: String? { Self.names[rawValue] }

    /// The value in hex, eight digits: `0x000000A0`.
    public var hex: String {
        let digits = String(rawValue, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }

    /// The name and the hex code: `CKR_PIN_INCORRECT (0x000000A0)`, or `CKR 0x80000001` for a value not named here.
    public var description: String { name.map { "\($0) (\(hex))" } ?? "CKR \(hex)" }

    static let names: [UInt: String] = [
        UInt(CKR_OK): "CKR_OK", UInt(CKR_CANCEL): "CKR_CANCEL", UInt(CKR_HOST_MEMORY): "CKR_HOST_MEMORY",
        UInt(CKR_SLOT_ID_INVALID): "CKR_SLOT_ID_INVALID", UInt(CKR_GENERAL_ERROR): "CKR_GENERAL_ERROR",
        UInt(CKR_FUNCTION_FAILED): "CKR_FUNCTION_FAILED", UInt(CKR_ARGUMENTS_BAD): "CKR_ARGUMENTS_BAD",
        UInt(CKR_ATTRIBUTE_SENSITIVE): "CKR_ATTRIBUTE_SENSITIVE", UInt(CKR_ATTRIBUTE_TYPE_INVALID): "CKR_ATTRIBUTE_TYPE_INVALID",
        UInt(CKR_ATTRIBUTE_VALUE_INVALID): "CKR_ATTRIBUTE_VALUE_INVALID", UInt(CKR_DATA_INVALID): "CKR_DATA_INVALID",
        UInt(CKR_DATA_LEN_RANGE): "CKR_DATA_LEN_RANGE", UInt(CKR_DEVICE_ERROR): "CKR_DEVICE_ERROR",
        UInt(CKR_DEVICE_MEMORY): "CKR_DEVICE_MEMORY", UInt(CKR_DEVICE_REMOVED): "CKR_DEVICE_REMOVED",
        UInt(CKR_ENCRYPTED_DATA_INVALID): "CKR_ENCRYPTED_DATA_INVALID", UInt(CKR_ENCRYPTED_DATA_LEN_RANGE): "CKR_ENCRYPTED_DATA_LEN_RANGE",
        UInt(CKR_FUNCTION_CANCELED): "CKR_FUNCTION_CANCELED", UInt(CKR_FUNCTION_NOT_SUPPORTED): "CKR_FUNCTION_NOT_SUPPORTED",
        UInt(CKR_KEY_HANDLE_INVALID): "CKR_KEY_HANDLE_INVALID", UInt(CKR_KEY_SIZE_RANGE): "CKR_KEY_SIZE_RANGE",
        UInt(CKR_KEY_TYPE_INCONSISTENT): "CKR_KEY_TYPE_INCONSISTENT", UInt(CKR_KEY_FUNCTION_NOT_PERMITTED): "CKR_KEY_FUNCTION_NOT_PERMITTED",
        UInt(CKR_MECHANISM_INVALID): "CKR_MECHANISM_INVALID", UInt(CKR_MECHANISM_PARAM_INVALID): "CKR_MECHANISM_PARAM_INVALID",
        UInt(CKR_OBJECT_HANDLE_INVALID): "CKR_OBJECT_HANDLE_INVALID", UInt(CKR_OPERATION_ACTIVE): "CKR_OPERATION_ACTIVE",
        UInt(CKR_OPERATION_NOT_INITIALIZED): "CKR_OPERATION_NOT_INITIALIZED", UInt(CKR_PIN_INCORRECT): "CKR_PIN_INCORRECT",
        UInt(CKR_PIN_INVALID): "CKR_PIN_INVALID", UInt(CKR_PIN_LEN_RANGE): "CKR_PIN_LEN_RANGE", UInt(CKR_PIN_EXPIRED): "CKR_PIN_EXPIRED",
        UInt(CKR_PIN_LOCKED): "CKR_PIN_LOCKED", UInt(CKR_SESSION_CLOSED): "CKR_SESSION_CLOSED", UInt(CKR_SESSION_COUNT): "CKR_SESSION_COUNT",
        UInt(CKR_SESSION_HANDLE_INVALID): "CKR_SESSION_HANDLE_INVALID", UInt(CKR_SESSION_READ_ONLY): "CKR_SESSION_READ_ONLY",
        UInt(CKR_TEMPLATE_INCOMPLETE): "CKR_TEMPLATE_INCOMPLETE", UInt(CKR_TEMPLATE_INCONSISTENT): "CKR_TEMPLATE_INCONSISTENT",
        UInt(CKR_TOKEN_NOT_PRESENT): "CKR_TOKEN_NOT_PRESENT", UInt(CKR_TOKEN_NOT_RECOGNIZED): "CKR_TOKEN_NOT_RECOGNIZED",
        UInt(CKR_TOKEN_WRITE_PROTECTED): "CKR_TOKEN_WRITE_PROTECTED", UInt(CKR_USER_ALREADY_LOGGED_IN): "CKR_USER_ALREADY_LOGGED_IN",
        UInt(CKR_USER_NOT_LOGGED_IN): "CKR_USER_NOT_LOGGED_IN", UInt(CKR_USER_PIN_NOT_INITIALIZED): "CKR_USER_PIN_NOT_INITIALIZED",
        UInt(CKR_USER_TYPE_INVALID): "CKR_USER_TYPE_INVALID", UInt(CKR_BUFFER_TOO_SMALL): "CKR_BUFFER_TOO_SMALL",
        UInt(CKR_CRYPTOKI_NOT_INITIALIZED): "CKR_CRYPTOKI_NOT_INITIALIZED", UInt(CKR_CRYPTOKI_ALREADY_INITIALIZED): "CKR_CRYPTOKI_ALREADY_INITIALIZED",
    ]
}
