import CKeywardenPKCS11
import Synchronization

/// A PKCS#11 module loaded into the process, and initialized while a ``PKCS11Token`` uses it.
///
/// `C_Initialize` and `C_Finalize` are process-wide: a second `C_Initialize` of the same library answers
/// `CKR_CRYPTOKI_ALREADY_INITIALIZED`, and one `C_Finalize` ends every session of the process. So the modules are kept in
/// one registry, by the library's handle (two paths to the same library are one module): the first user initializes
/// it (with `CKF_OS_LOCKING_OK`), the last one to leave finalizes it. A module someone else in the process initialized
/// is used as it is and not finalized by us. The library stays loaded after that (dlclose is never called: some
/// modules do not survive being unloaded), so opening it again only initializes it again.
///
/// `@unchecked Sendable`: the function list is the module's, immutable once returned by `C_GetFunctionList`, and a
/// module initialized with `CKF_OS_LOCKING_OK` takes calls from several threads (each session is still used by one
/// thread at a time: ``PKCS11Token`` serializes its calls).
final class PKCS11Module: @unchecked Sendable {
    /// The path the module was loaded from (as configured).
    let path: String
    /// The module's function list.
    let functions: CK_FUNCTION_LIST_PTR
    /// The library's handle, as a number: the registry's key.
    private let identity: UInt

    private struct Entry {
        let module: PKCS11Module
        var users: Int
        var initializedHere: Bool
    }

    private static let registry = Mutex<[UInt: Entry]>([:])

    private init(path: String, functions: CK_FUNCTION_LIST_PTR, identity: UInt) {
        self.path = path
        self.functions = functions
        self.identity = identity
    }

    /// The module at `path`, loaded and initialized; call ``release()`` once for every successful call.
    static func acquire(path: String) throws(PKCS11Error) -> PKCS11Module {
        var handle: UnsafeMutableRawPointer?
        var functions: CK_FUNCTION_LIST_PTR?
        let capacity = 512
        var reason = [CChar](repeating: 0, count: capacity)
        let loaded = kw_p11_load(path, &handle, &functions, &reason, capacity)
        guard loaded == 0, let handle, let functions else {
            let text = String(decoding: reason.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw .moduleNotLoadable(path: path, reason: text.isEmpty ? "dlopen failed" : text)
        }
        let identity = UInt(bitPattern: handle)
        return try registry.withLock { (modules: inout [UInt: Entry]) throws(PKCS11Error) -> PKCS11Module in
            var entry = modules[identity] ?? Entry(module: PKCS11Module(path: path, functions: functions, identity: identity),
                                                   users: 0, initializedHere: false)
            if entry.users == 0 {
                let value = kw_p11_initialize(entry.module.functions)
                switch value {
                case CK_RV(CKR_OK):
                    entry.initializedHere = true
                case CK_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED):
                    entry.initializedHere = false
                default:
                    throw .moduleNotLoadable(path: path, reason: "C_Initialize failed: \(PKCS11ReturnValue(UInt(value)))")
                }
            }
            entry.users += 1
            modules[identity] = entry
            return entry.module
        }
    }

    /// One user fewer; the last one finalizes the module if it was initialized here.
    func release() {
        Self.registry.withLock { modules in
            guard var entry = modules[identity], entry.users > 0 else { return }
            entry.users -= 1
            if entry.users == 0, entry.initializedHere {
                _ = kw_p11_finalize(functions)
                entry.initializedHere = false
            }
            modules[identity] = entry
        }
    }
}
