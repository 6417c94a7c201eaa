#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's limit on open file descriptors: every client connection, vendor connection, database connection and
/// file takes one, and past the limit `accept` fails, so connections are refused in ways a client cannot tell apart
/// from a crash.
enum DescriptorLimit {
    /// Descriptors kept free of client connections: the database's, the vendors', the logs', the data files'.
    static let reserve = 512

    /// Raises the soft limit to the hard one (as Go and nginx do: many systems start processes at 1,024) and returns
    /// the limit now in force; `nil` when it cannot be read.
    static func raiseToHard() -> Int? {
        var limits = rlimit()
        #if canImport(Glibc)
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        #else
        let resource = RLIMIT_NOFILE
        #endif
        guard getrlimit(resource, &limits) == 0 else { return nil }
        if limits.rlim_cur < limits.rlim_max {
            var raised = limits
            raised.rlim_cur = limits.rlim_max
            if setrlimit(resource, &raised) == 0 { limits = raised }
        }
        return limits.rlim_cur > rlim_t(Int.max) ? Int.max : Int(limits.rlim_cur)
    }

    /// The most client connections the limit leaves room for, when it is below `wanted`.
    static func connectionCap(limit: Int?, wanted: Int) -> Int? {
        guard let limit, limit - reserve < wanted else { return nil }
        return max(16, limit - reserve)
    }
}
