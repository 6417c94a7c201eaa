import Foundation
import Logging
import KeywardenApp
import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// When to give freed memory back to the system: when a load has ended, and again now and then while it stays quiet.
///
/// glibc's allocator keeps what the process freed in its arenas (one per thread that allocated, and Swift's
/// concurrency runs many), so the resident size stays at its peak long after a load. `malloc_trim` returns the free
/// pages; it walks the heap, so it is asked for only when no gateway call is under way and none started since the
/// last look (realtime sessions and management requests are not counted: a trim locks one arena at a time, briefly):
/// at the first quiet look, then every `repeatEvery` looks while it stays quiet, `trimsPerSpell` times in all (what is
/// freed later — the vendor pool's idle connections closing after 50 s — is returned too; then it rests until calls
/// come again). A value: events in, a decision out.
struct MemoryTrimPolicy: Sendable, Equatable {
    /// Quiet looks between two trims of one quiet spell.
    let repeatEvery: Int
    /// Trims of one quiet spell at most.
    let trimsPerSpell: Int
    /// The count of calls ever started at the last look (the process starts at 0: a load before the first look counts).
    private var lastStarted = 0
    /// Quiet looks since the spell began (0: activity at the last look).
    private var quietLooks = 0
    /// Whether anything ran since the process began (an idle process has nothing to give back).
    private var everActive = false

    init(repeatEvery: Int = 2, trimsPerSpell: Int = 8) {
        self.repeatEvery = max(1, repeatEvery)
        self.trimsPerSpell = max(1, trimsPerSpell)
    }

    /// The decision at a look: `started` is the count of calls ever started, `underWay` how many run now.
    mutating func look(started: Int, underWay: Int) -> Bool {
        defer { lastStarted = started }
        if started != lastStarted || underWay > 0 {
            everActive = true
            quietLooks = 0
            return false
        }
        guard everActive, quietLooks < repeatEvery * trimsPerSpell else { return false }
        quietLooks += 1
        return (quietLooks - 1) % repeatEvery == 0
    }
}

/// Gives freed memory back to the system after a load (``MemoryTrimPolicy``), looking every `interval`.
struct MemoryTrimmer: Service {
    let calls: LiveCalls
    let interval: Duration
    let logger: Logger

    func run() async throws {
        // Without glibc's trim there is nothing to do; a service of the group still runs until the group stops.
        guard let trim = Self.mallocTrim else {
            try? await gracefulShutdown()
            return
        }
        let policy = Mutex(MemoryTrimPolicy())
        await PeriodicRounds.run(every: interval, logger: logger, failure: "memory: trim round failed") { [calls, logger] in
            guard policy.withLock({ $0.look(started: calls.started, underWay: calls.count) }) else { return }
            let measures = logger.logLevel <= .debug
            let before = measures ? Self.residentBytes() : nil
            _ = trim(0)
            if measures {
                logger.debug("memory: freed pages returned after a load", metadata: [
                    "rss_mb_before": "\((before ?? 0) >> 20)", "rss_mb_after": "\((Self.residentBytes() ?? 0) >> 20)",
                ])
            }
        }
    }

    /// glibc's `malloc_trim` (not in Swift's Glibc module), `nil` on another C library: then nothing is trimmed.
    static let mallocTrim: (@convention(c) (Int) -> Int32)? = {
        #if canImport(Glibc)
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int) -> Int32).self)
        #else
        return nil
        #endif
    }()

    /// The process's resident size (`VmRSS`), when the system says.
    static func residentBytes() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return kilobytes << 10
    }
}
