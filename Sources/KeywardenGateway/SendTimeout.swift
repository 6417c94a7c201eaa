/// When a gateway call's client has stopped taking its answer: the answer's bytes wait in the connection and none of
/// them is taken for ``limit`` (nginx's `send_timeout`, `KEYWARDEN_SEND_TIMEOUT`).
///
/// A client that stops reading would otherwise hold its call for ever: the call waits for the connection to take more,
/// holding its vendor connection, its task, its budget hold, and a graceful shutdown waiting for it. Given up on, the
/// call ends as when its client leaves (the connection closes; the vendor's stream is cancelled; the usage row says
/// 499 with what was delivered).
///
/// The data plane's handler tells it what becomes of the answer under way (begun, the connection's writability, its end
/// written but not yet out, out whole) and, when the timer it asked for fires, how many bytes still wait in the
/// connection; it answers with a timer to arm or cancel, or the decision to abandon the call. It reads no clock and holds
/// no channel, so every path is tested with plain values.
///
/// The answer is *stalled* while it is under way and the connection is not writable (a streamed answer waits), or its
/// end was written and is not out yet (a whole body written at once, or a stream's last parts, wait in the connection).
/// A stall arms one timer; when it fires, the call is abandoned unless fewer bytes wait than when it was armed (the
/// client took some: a slow reader is not cut, and the timer runs again for the bytes that are left). Progress is read
/// only when a timer fires, so a client is given up on between one and two limits after it last took a byte.
public struct SendTimeout: Sendable {
    /// What the handler does.
    public enum Action: Equatable, Sendable {
        /// Arm a timer of ``SendTimeout/limit`` (cancelling any other); when it fires, report
        /// ``SendTimeout/deadlinePassed(timer:waiting:)`` with this number.
        case arm(timer: Int)
        /// Cancel the armed timer: the answer is no longer stalled.
        case cancel
        /// Nothing of the answer was taken for ``SendTimeout/limit``: close the connection (the call ends as when its
        /// client leaves).
        case abandon
    }

    /// How long an answer may stall without a byte of it being taken.
    public let limit: Duration

    /// An answer is under way (its head written, its end not yet out whole).
    private var answering = false
    /// Whether the connection takes more (as the channel last said).
    private var writable = true
    /// The answer's end was written and is not yet out.
    private var endWaiting = false
    /// The number of the timer armed last: a timer that fires after it was cancelled, or replaced, says an older one.
    private var timer = 0
    private var armed = false
    /// The bytes that waited in the connection when the timer was armed.
    private var waitingWhenArmed = 0
    /// The call was given up on: nothing more is decided.
    private var abandoned = false

    /// - Parameter limit: how long an answer may stall without a byte of it being taken.
    public init(limit: Duration) {
        self.limit = limit
    }

    /// Whether a timer runs for the answer under way.
    public var isArmed: Bool { armed }

    /// Whether an answer is under way (begun, and not yet out whole).
    public var isAnswering: Bool { answering }

    private var stalled: Bool { answering && !abandoned && (!writable || endWaiting) }

    // MARK: Events

    /// An answer's head is about to be written; `waiting` bytes wait in the connection now.
    public mutating func answerBegan(waiting: Int) -> Action? {
        answering = true
        endWaiting = false
        return reconsider(waiting: waiting)
    }

    /// The connection became writable (`true`) or not (`false`); `waiting` bytes wait in it.
    public mutating func writabilityChanged(_ writable: Bool, waiting: Int) -> Action? {
        self.writable = writable
        return reconsider(waiting: waiting)
    }

    /// The answer's end was written and flushed, and is not out yet: `waiting` bytes wait in the connection.
    public mutating func endWritten(waiting: Int) -> Action? {
        guard answering else { return nil }
        endWaiting = true
        return reconsider(waiting: waiting)
    }

    /// The answer is out whole, or cut, or the connection closed: nothing is stalled.
    public mutating func answerEnded() -> Action? {
        answering = false
        endWaiting = false
        return reconsider(waiting: 0)
    }

    /// The timer numbered `timer` fired; `waiting` bytes wait in the connection.
    public mutating func deadlinePassed(timer: Int, waiting: Int) -> Action? {
        guard armed, timer == self.timer else { return nil }
        guard stalled else {
            armed = false
            return nil
        }
        if waiting < waitingWhenArmed {
            // The client took some within the limit: it gets another for what is left.
            return arm(waiting: waiting)
        }
        armed = false
        abandoned = true
        return .abandon
    }

    // MARK: Internals

    private mutating func reconsider(waiting: Int) -> Action? {
        if stalled {
            // A stall that goes on keeps its timer (and the bytes it started with).
            return armed ? nil : arm(waiting: waiting)
        }
        guard armed else { return nil }
        armed = false
        return .cancel
    }

    private mutating func arm(waiting: Int) -> Action {
        armed = true
        timer &+= 1
        waitingWhenArmed = waiting
        return .arm(timer: timer)
    }
}
