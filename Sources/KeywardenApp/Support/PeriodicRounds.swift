import Logging
import ServiceLifecycle

/// A background service's loop: one round, then a pause, until graceful shutdown; a failed round is logged and the next
/// one comes on time (a round in progress stops at its next await when shutdown cancels it).
public enum PeriodicRounds {
    /// Runs `round` every `pause` until graceful shutdown; a thrown error is logged as `failure`.
    public static func run(every pause: Duration, logger: Logger, failure: String,
                    _ round: @escaping @Sendable () async throws -> Void) async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await round()
                } catch {
                    logger.warning("\(failure)", metadata: ["error": "\(String(describing: error))"])
                }
                try? await Task.sleep(for: pause)
            }
        }
    }
}
