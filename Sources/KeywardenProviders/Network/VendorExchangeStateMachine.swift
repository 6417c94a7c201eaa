import NIOCore
import NIOHTTP1

/// One vendor connection's exchanges as values: the handler tells it what happened (the caller began, a part came, a
/// timer fired) and carries out the action it answers.
///
/// It holds no channel, promise, stream or clock (times come in with the events), so every path is tested with plain
/// values. One exchange at a time: a request, then its answer's head, then the body whole or as a stream; the
/// connection goes back to its pool when the answer ended and both sides keep it alive, and is closed otherwise.
struct VendorExchangeStateMachine {
    /// Where the connection's current exchange is.
    enum Phase: Equatable {
        case idle
        case awaitingHead
        /// The head came in the read under way; its body so far, until the read ends (then it streams) or the body does.
        case headRead(HTTPResponseHead, ByteBuffer?)
        case streaming(keepAlive: Bool)
        case closed
    }

    /// Why an exchange failed; the handler turns each into the error its caller classifies.
    enum Failure {
        /// The connection closed before any of an answer (`written`: the whole request had been sent).
        case closedBeforeAnswer(written: Bool)
        /// The request did not reach the vendor in time (not billed).
        case connectTimeout
        /// The vendor had the whole request and did not answer in time.
        case deadlineExceeded
        /// The vendor went silent for the read timeout while its body was awaited.
        case readTimeout
        /// The connection closed during an answer.
        case remoteClosed
        /// A part out of order, bytes nobody asked for, or `101 Switching Protocols`.
        case unexpectedAnswer
        /// The caller gave up while it waited for the head.
        case cancelled(requestSent: Bool)
        /// An error the channel raised.
        case channel(any Error)
    }

    /// Whom a failure reaches.
    enum Failed {
        /// The caller still waiting for the head.
        case answer
        /// The caller who has no head yet although it was read: it gets the head and this body so far, then the failure
        /// in the body (a cut answer, not a failed attempt, so the vendor's work is neither repeated nor unmetered).
        case streamAfterHead(HTTPResponseHead, ByteBuffer?, exchange: Int)
        /// The reader of the body.
        case stream
        /// No one: the connection was idle.
        case nobody
    }

    /// What becomes of the connection when an answer ended.
    enum Release: Equatable {
        /// Back to the pool (when the channel is still open and a pool takes it), else closed.
        case keep
        /// Closed: one side does not keep it alive, or the vendor answered before it had the whole request.
        case close
    }

    /// What the handler does next.
    enum Action {
        case none
        /// Fail the caller who began now (the exchange under way, if any, is untouched); with `release`, give the
        /// connection back as it was.
        case refuse(Failure, release: Bool)
        /// Send exchange `exchange`'s request: arm its deadline, write it; then read if `readFirst`.
        case send(exchange: Int, readFirst: Bool)
        /// Cancel the deadline timer and arm the read timer for `deadline`.
        case armReadTimer(deadline: NIODeadline)
        /// Hand the caller the head and the body so far as a back-pressured stream of exchange `exchange`.
        case startStreaming(HTTPResponseHead, ByteBuffer?, exchange: Int)
        /// Pass a part to the body's reader.
        case yield(ByteBuffer)
        /// The answer came whole: cancel the timer, give the connection back (or close it) and read if `readFirst`,
        /// then hand the caller the head and body.
        case complete(HTTPResponseHead, ByteBuffer, release: Release, readFirst: Bool)
        /// The streamed answer ended: cancel the timer, give the connection back (or close it) and read if `readFirst`,
        /// then finish the stream.
        case finishStream(release: Release, readFirst: Bool)
        /// Cancel the timer, fail whom it reaches, close the connection.
        case fail(Failure, Failed)
        /// Close the connection (never leased again).
        case retire
        /// The reader is behind: no reads and no read timer until it asks for more.
        case pauseReadTimer
        /// The reader asked for more: arm the read timer for `deadline`, and read if a read waits.
        case resume(deadline: NIODeadline, readFirst: Bool)
        /// Close the connection unless exchange `exchange` is still the last when the idle timeout passes.
        case scheduleIdleClose(exchange: Int)
        /// Pass the pipeline's read on.
        case read
    }

    private(set) var phase = Phase.idle
    /// The current exchange's number: timers and the body's reader carry theirs, so a late signal of an earlier
    /// exchange does not touch the next one.
    private(set) var exchange = 0
    private var sawAnswerBytes = false
    private var requestWritten = false
    /// Whether reads wait for the body's reader.
    private(set) var readsHeld = false
    private var readPending = false
    private var lastRead = NIODeadline.uptimeNanoseconds(0)
    private var readTimeout = TimeAmount.seconds(61)

    /// The most of a body gathered with its head before the answer streams instead.
    let wholeBodyLimit: Int

    init(wholeBodyLimit: Int = 1024 * 1024) {
        self.wholeBodyLimit = wholeBodyLimit
    }

    // MARK: The caller's side

    /// A caller begins an exchange at `now`, to be answered by `deadline`.
    mutating func begin(channelActive: Bool, now: NIODeadline, deadline: NIODeadline, readTimeout: TimeAmount) -> Action {
        guard case .idle = phase, channelActive else { return .refuse(.closedBeforeAnswer(written: false), release: false) }
        // Nothing is written for a call whose time is up: the connection stays as it was, and nothing reached the vendor.
        guard deadline > now else { return .refuse(.connectTimeout, release: true) }
        exchange &+= 1
        phase = .awaitingHead
        sawAnswerBytes = false
        requestWritten = false
        readsHeld = false
        self.readTimeout = readTimeout
        return .send(exchange: exchange, readFirst: takePendingRead())
    }

    /// The request's last part was written (or failed to be).
    mutating func requestWritten(exchange: Int, error: (any Error)?) -> Action {
        guard exchange == self.exchange else { return .none }
        guard let error else {
            requestWritten = true
            return .none
        }
        // A write that failed before any answer (the vendor had closed the connection): not written whole.
        if case .awaitingHead = phase, !sawAnswerBytes { return fail(.closedBeforeAnswer(written: false)) }
        return fail(.channel(error))
    }

    /// The request's deadline passed.
    mutating func deadlinePassed(exchange: Int) -> Action {
        guard exchange == self.exchange, case .awaitingHead = phase else { return .none }
        // deadlineExceeded only once the vendor had the whole request (it works on it, and bills it); a request still
        // being sent reached no one.
        return fail(requestWritten ? .deadlineExceeded : .connectTimeout)
    }

    /// The caller waiting for the head gave up (`current`: it is this exchange's caller).
    mutating func cancelled(current: Bool) -> Action {
        switch phase {
        case .awaitingHead where current, .headRead where current: return fail(.cancelled(requestSent: requestWritten))
        default: return .none
        }
    }

    /// The body's reader of exchange `exchange` asks for more, at `now`.
    mutating func readerWantsMore(exchange: Int, now: NIODeadline) -> Action {
        guard exchange == self.exchange, case .streaming = phase, readsHeld else { return .none }
        readsHeld = false
        lastRead = now
        return .resume(deadline: lastRead + readTimeout, readFirst: takePendingRead())
    }

    /// The body's reader of exchange `exchange` stopped before the answer's end: the rest is never read, and the
    /// connection never reused.
    mutating func readerLeft(exchange: Int) -> Action {
        guard exchange == self.exchange, case .streaming = phase else { return .none }
        return retire()
    }

    /// The body's reader has enough for now (its stream said so when given a part).
    mutating func readerIsBehind() -> Action {
        readsHeld = true
        return .pauseReadTimer
    }

    /// The pool took the connection back: close it if it is still idle after the idle timeout.
    func keptIdle() -> Action {
        guard case .idle = phase else { return .none }
        return .scheduleIdleClose(exchange: exchange)
    }

    /// The idle timeout scheduled after exchange `exchange` passed.
    mutating func idleTimeoutPassed(exchange: Int) -> Action {
        guard exchange == self.exchange, case .idle = phase else { return .none }
        return retire()
    }

    // MARK: The vendor's side

    /// An answer's head came, at `now`.
    mutating func receivedHead(_ head: HTTPResponseHead, now: NIODeadline) -> Action {
        sawAnswerBytes = true
        lastRead = now
        switch phase {
        case .awaitingHead:
            guard head.status != .switchingProtocols else { return fail(.unexpectedAnswer) }
            phase = .headRead(head, nil)
            return .armReadTimer(deadline: lastRead + readTimeout)
        case .closed: return .none
        default: return fail(.unexpectedAnswer)
        }
    }

    /// A part of an answer's body came, at `now`.
    mutating func receivedBody(_ part: ByteBuffer, now: NIODeadline) -> Action {
        sawAnswerBytes = true
        lastRead = now
        switch phase {
        case .headRead(let head, var gathered):
            var part = part
            if gathered == nil { gathered = part } else { gathered?.writeBuffer(&part) }
            phase = .headRead(head, gathered)
            if let gathered, gathered.readableBytes > wholeBodyLimit { return startStreaming() }
            return .none
        case .streaming: return .yield(part)
        case .closed: return .none
        default: return fail(.unexpectedAnswer)
        }
    }

    /// An answer ended, at `now`.
    mutating func receivedEnd(now: NIODeadline) -> Action {
        sawAnswerBytes = true
        lastRead = now
        switch phase {
        case .headRead(let head, let gathered):
            // The whole answer came in one read: the connection goes back first, then the caller has it all.
            let release = answerEnded(keepAlive: head.isKeepAlive)
            return .complete(head, gathered ?? ByteBuffer(), release: release, readFirst: takePendingRead())
        case .streaming(let keepAlive):
            // The connection is back in the pool before the caller reads the end, so its next request finds it.
            let release = answerEnded(keepAlive: keepAlive)
            return .finishStream(release: release, readFirst: takePendingRead())
        case .closed: return .none
        default: return fail(.unexpectedAnswer)
        }
    }

    /// The read under way ended: a head read without its whole body goes to the caller now, the body as it comes.
    mutating func readComplete() -> Action {
        guard case .headRead = phase else { return .none }
        return startStreaming()
    }

    /// The channel raised `error` (`abruptClose`: a reset, or TLS closed without its close_notify).
    mutating func errorCaught(_ error: any Error, abruptClose: Bool) -> Action {
        // A vendor closing an idle kept connection abruptly before a byte of an answer: the close that follows decides
        // (a retry may be allowed), as for a plain close.
        if !sawAnswerBytes, case .awaitingHead = phase, abruptClose { return retire() }
        return fail(.channel(error))
    }

    /// The channel closed.
    mutating func channelClosed() -> Action {
        switch phase {
        case .awaitingHead where !sawAnswerBytes: return fail(.closedBeforeAnswer(written: requestWritten))
        case .awaitingHead, .headRead, .streaming: return fail(.remoteClosed)
        case .idle, .closed:
            phase = .closed
            return .none
        }
    }

    /// The pipeline asks to read: held while the body's reader is behind.
    mutating func readRequested() -> Action {
        guard readsHeld else { return .read }
        readPending = true
        return .none
    }

    /// The read timer of exchange `exchange` fired at `now`.
    mutating func readTimerFired(exchange: Int, now: NIODeadline) -> Action {
        guard exchange == self.exchange, !readsHeld else { return .none }
        switch phase {
        case .streaming, .headRead: break
        default: return .none
        }
        // A part since the timer was armed moves the limit on.
        if now - lastRead < readTimeout { return .armReadTimer(deadline: lastRead + readTimeout) }
        return fail(.readTimeout)
    }

    /// The handler closes the connection although the answer let it be kept (the channel closed, or no pool takes it).
    mutating func closing() -> Action {
        retire()
    }

    // MARK: Helpers

    private mutating func startStreaming() -> Action {
        guard case .headRead(let head, let gathered) = phase else { return .none }
        phase = .streaming(keepAlive: head.isKeepAlive)
        return .startStreaming(head, gathered, exchange: exchange)
    }

    /// An answer ended: the connection is idle again, kept only if both sides keep it alive and the vendor had the whole
    /// request (the rest of one it answered early is not sent).
    private mutating func answerEnded(keepAlive: Bool) -> Release {
        phase = .idle
        readsHeld = false
        return keepAlive && requestWritten ? .keep : .close
    }

    /// Fails the exchange in progress (its caller, or its body's reader) and closes the connection.
    private mutating func fail(_ failure: Failure) -> Action {
        let failed: Failed
        switch phase {
        case .awaitingHead: failed = .answer
        case .headRead(let head, let gathered): failed = .streamAfterHead(head, gathered, exchange: exchange)
        case .streaming: failed = .stream
        case .idle, .closed: failed = .nobody
        }
        phase = .closed
        return .fail(failure, failed)
    }

    /// Closes the connection; a caller still waiting for the head learns why from the close that follows.
    private mutating func retire() -> Action {
        if case .awaitingHead = phase {} else { phase = .closed }
        return .retire
    }

    private mutating func takePendingRead() -> Bool {
        guard !readsHeld, readPending else { return false }
        readPending = false
        return true
    }
}
