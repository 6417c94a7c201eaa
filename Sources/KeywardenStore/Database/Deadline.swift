import Synchronization

/// Runs work that must be answered within a limit whatever the work does.
///
/// A timeout built from a task group waits for its child to end after cancelling it, so work that ignores
/// cancellation (a query written to a connection that already closed, which PostgresNIO never completes) still holds
/// its caller. Here the work runs in a task of its own: the caller is answered at the limit, the work is cancelled and
/// `onAbandon` runs (the engine closes and forgets the connection the work holds), and whatever the work does later
/// reaches no one.
enum Deadline {
    /// Runs `body`, throwing ``StoreError/unavailable(reason:)`` when it has not finished within `limit`, and
    /// `CancellationError` at once when the calling task is cancelled; either way `onAbandon` runs once. Task-local values
    /// reach `body`.
    ///
    /// `disposeLate` receives a result the work produced after its caller was answered (a connection opened too late
    /// must still be closed).
    static func run<R: Sendable>(
        _ limit: Duration, what: String = "the database",
        onAbandon: @escaping @Sendable () -> Void = {},
        disposeLate: (@Sendable (R) -> Void)? = nil,
        _ body: @escaping @Sendable () async throws -> R
    ) async throws -> R {
        let race = Race<R>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<R, any Error>) in
                race.start(continuation, limit: limit, what: what, onAbandon: onAbandon, disposeLate: disposeLate, body: body)
            }
        } onCancel: {
            if race.finish(.failure(CancellationError()), cancelsWork: true) { onAbandon() }
        }
    }

    /// The one answer of a run: the work's, the timer's or the caller's cancellation, whichever comes first.
    private final class Race<R: Sendable>: Sendable {
        private struct State {
            var continuation: CheckedContinuation<R, any Error>?
            /// Set when an answer was given (possibly before the continuation was in place: an early cancellation).
            var answered: Result<R, any Error>?
            var work: Task<Void, Never>?
            var timer: Task<Void, Never>?
        }

        private let state = Mutex(State())

        func start(_ continuation: CheckedContinuation<R, any Error>, limit: Duration, what: String, onAbandon: @escaping @Sendable () -> Void,
                   disposeLate: (@Sendable (R) -> Void)?, body: @escaping @Sendable () async throws -> R) {
            let early: Result<R, any Error>? = state.withLock { state in
                if let answered = state.answered { return answered }
                state.continuation = continuation
                return nil
            }
            if let early {
                continuation.resume(with: early)
                return
            }
            let work = Task {
                do {
                    let value = try await body()
                    if !self.finish(.success(value), cancelsWork: false) { disposeLate?(value) }
                } catch {
                    self.finish(.failure(error), cancelsWork: false)
                }
            }
            let timer = Task {
                guard (try? await Task.sleep(for: limit)) != nil else { return }
                let expired = StoreError.unavailable(reason: "\(what) did not answer within \(limit.roundedDescription)")
                if self.finish(.failure(expired), cancelsWork: true) { onAbandon() }
            }
            let finished = state.withLock { state -> Bool in
                state.work = work
                state.timer = timer
                return state.answered != nil
            }
            // Answered while the tasks were being made: the loser is stopped here.
            if finished {
                timer.cancel()
                work.cancel()
            }
        }

        /// Gives the answer unless one was given; whether this call gave it.
        @discardableResult
        func finish(_ result: Result<R, any Error>, cancelsWork: Bool) -> Bool {
            let (continuation, work, timer, first) = state.withLock { state -> (CheckedContinuation<R, any Error>?, Task<Void, Never>?, Task<Void, Never>?, Bool) in
                guard state.answered == nil else { return (nil, nil, nil, false) }
                state.answered = result
                defer { state.continuation = nil }
                return (state.continuation, state.work, state.timer, true)
            }
            guard first else { return false }
            timer?.cancel()
            if cancelsWork { work?.cancel() }
            continuation?.resume(with: result)
            return true
        }
    }
}

/// A longer deadline for maintenance work (a migration, copying a store) run inside `withValue`.
public enum DatabaseDeadline {
    /// Replaces ``DatabaseTimeouts/operation`` (and PostgreSQL's statement timeout, in transactions) for the work inside.
    @TaskLocal public static var override: Duration?
}

extension Duration {
    /// Whole milliseconds.
    var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }

    /// "10 s", "1.5 s", "250 ms": for messages.
    var roundedDescription: String {
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000) s" }
        if milliseconds < 1000 { return "\(milliseconds) ms" }
        return "\(Double(milliseconds) / 1000) s"
    }
}
