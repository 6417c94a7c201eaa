import AsyncHTTPClient
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
@testable import KeywardenProviders

/// The vendor connection's exchanges as values: each event's action, with no socket and no clock.
@Suite("Vendor exchange state machine")
struct VendorExchangeStateMachineTests {
    typealias Machine = VendorExchangeStateMachine
    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    static let timeout = TimeAmount.seconds(61)
    static func head(_ status: HTTPResponseStatus = .ok, keepAlive: Bool = true) -> HTTPResponseHead {
        HTTPResponseHead(version: .http1_1, status: status, headers: keepAlive ? [:] : ["connection": "close"])
    }

    /// A machine with exchange 1 begun at `start`; its request written when `written`.
    static func begun(written: Bool = true, limit: Int = 1024) -> Machine {
        var machine = Machine(wholeBodyLimit: limit)
        _ = machine.begin(channelActive: true, now: start, deadline: start + .seconds(30), readTimeout: timeout)
        if written { _ = machine.requestWritten(exchange: 1, error: nil) }
        return machine
    }

    @Test("a begin on an idle open connection sends exchange 1; a second begin, a closed channel or a passed deadline is refused")
    func beginning() {
        var machine = Machine()
        guard case .send(exchange: 1, readFirst: false) = machine.begin(channelActive: true, now: Self.start, deadline: Self.start + .seconds(1),
                                                                          readTimeout: Self.timeout) else { Issue.record("not sent"); return }
        #expect(machine.phase == .awaitingHead)
        guard case .refuse(.closedBeforeAnswer(written: false), release: false) = machine.begin(channelActive: true, now: Self.start,
                                                                                                 deadline: Self.start + .seconds(1), readTimeout: Self.timeout)
        else { Issue.record("a second exchange at once was not refused"); return }
        var closed = Machine()
        guard case .refuse(.closedBeforeAnswer(written: false), release: false) = closed.begin(channelActive: false, now: Self.start,
                                                                                                deadline: Self.start + .seconds(1), readTimeout: Self.timeout)
        else { Issue.record("a closed channel was not refused"); return }
        // Time already up: nothing is written, the connection goes back as it was (exchange number unchanged).
        var late = Machine()
        guard case .refuse(.connectTimeout, release: true) = late.begin(channelActive: true, now: Self.start, deadline: Self.start, readTimeout: Self.timeout)
        else { Issue.record("a passed deadline was not refused"); return }
        #expect(late.phase == .idle && late.exchange == 0)
    }

    @Test("a whole answer in one read completes with the connection kept; without keep-alive, or before the request was written whole, it is closed")
    func wholeAnswer() {
        var machine = Self.begun()
        guard case .armReadTimer(let deadline) = machine.receivedHead(Self.head(), now: Self.start + .seconds(2)) else { Issue.record("no read timer"); return }
        #expect(deadline == Self.start + .seconds(2) + Self.timeout)
        #expect(machine.receivedBody(ByteBuffer(string: "{\"ok\":"), now: Self.start + .seconds(2)).isNone)
        #expect(machine.receivedBody(ByteBuffer(string: "true}"), now: Self.start + .seconds(2)).isNone)
        guard case .complete(_, let body, release: .keep, readFirst: false) = machine.receivedEnd(now: Self.start + .seconds(2)) else {
            Issue.record("not completed and kept"); return
        }
        #expect(String(buffer: body) == "{\"ok\":true}" && machine.phase == .idle)

        var closing = Self.begun()
        _ = closing.receivedHead(Self.head(keepAlive: false), now: Self.start)
        guard case .complete(_, _, release: .close, readFirst: false) = closing.receivedEnd(now: Self.start) else { Issue.record("kept without keep-alive"); return }

        // The vendor answered before it had the whole request: the rest is never sent, so the connection closes.
        var early = Self.begun(written: false)
        _ = early.receivedHead(Self.head(), now: Self.start)
        guard case .complete(_, _, release: .close, readFirst: false) = early.receivedEnd(now: Self.start) else { Issue.record("kept half-sent"); return }
    }

    @Test("a head whose body did not come in the same read streams; a body past the limit streams; parts are yielded; the end keeps the connection")
    func streaming() {
        var machine = Self.begun()
        _ = machine.receivedHead(Self.head(), now: Self.start)
        _ = machine.receivedBody(ByteBuffer(string: "data: 1\n\n"), now: Self.start)
        guard case .startStreaming(_, let gathered?, exchange: 1) = machine.readComplete() else { Issue.record("not streamed at the read's end"); return }
        #expect(String(buffer: gathered) == "data: 1\n\n" && machine.phase == .streaming(keepAlive: true))
        guard case .yield(let part) = machine.receivedBody(ByteBuffer(string: "data: 2\n\n"), now: Self.start) else { Issue.record("not yielded"); return }
        #expect(String(buffer: part) == "data: 2\n\n")
        #expect(machine.readComplete().isNone, "a streaming answer is not started twice")
        guard case .finishStream(release: .keep, readFirst: false) = machine.receivedEnd(now: Self.start) else { Issue.record("not finished"); return }
        #expect(machine.phase == .idle)

        var large = Self.begun(limit: 8)
        _ = large.receivedHead(Self.head(), now: Self.start)
        #expect(large.receivedBody(ByteBuffer(string: "12345678"), now: Self.start).isNone, "at the limit it is still gathered")
        guard case .startStreaming(_, let all?, exchange: 1) = large.receivedBody(ByteBuffer(string: "9"), now: Self.start) else {
            Issue.record("not streamed past the limit"); return
        }
        #expect(all.readableBytes == 9)
    }

    @Test("the deadline before the request is written whole is a connect timeout, after it a deadline exceeded; a late timer of an earlier exchange does nothing")
    func deadlines() {
        var unsent = Self.begun(written: false)
        guard case .fail(.connectTimeout, .answer) = unsent.deadlinePassed(exchange: 1) else { Issue.record("not a connect timeout"); return }
        #expect(unsent.phase == .closed)
        var sent = Self.begun()
        #expect(sent.deadlinePassed(exchange: 0).isNone, "an earlier exchange's timer")
        guard case .fail(.deadlineExceeded, .answer) = sent.deadlinePassed(exchange: 1) else { Issue.record("not a deadline exceeded"); return }
        var answered = Self.begun()
        _ = answered.receivedHead(Self.head(), now: Self.start)
        #expect(answered.deadlinePassed(exchange: 1).isNone, "the head came: the deadline is over")
    }

    @Test("a reader behind holds reads and the read timer; asking for more resumes both and passes the held read on")
    func backPressure() {
        var machine = Self.begun()
        _ = machine.receivedHead(Self.head(), now: Self.start)
        _ = machine.readComplete()
        guard case .pauseReadTimer = machine.readerIsBehind() else { Issue.record("timer not paused"); return }
        #expect(machine.readRequested().isNone, "the read waits")
        #expect(machine.readTimerFired(exchange: 1, now: Self.start + .seconds(600)).isNone, "no read timeout while the reader holds back")
        #expect(machine.readerWantsMore(exchange: 0, now: Self.start).isNone, "an earlier exchange's reader")
        guard case .resume(let deadline, readFirst: true) = machine.readerWantsMore(exchange: 1, now: Self.start + .seconds(5)) else {
            Issue.record("not resumed with the held read"); return
        }
        #expect(deadline == Self.start + .seconds(5) + Self.timeout)
        guard case .read = machine.readRequested() else { Issue.record("reads not passed on"); return }
    }

    @Test("the read timer moves on with each part and fails the body after the read timeout of silence")
    func readTimeout() {
        var machine = Self.begun()
        _ = machine.receivedHead(Self.head(), now: Self.start)
        _ = machine.readComplete()
        _ = machine.receivedBody(ByteBuffer(string: "x"), now: Self.start + .seconds(30))
        guard case .armReadTimer(let later) = machine.readTimerFired(exchange: 1, now: Self.start + Self.timeout) else { Issue.record("not re-armed"); return }
        #expect(later == Self.start + .seconds(30) + Self.timeout)
        guard case .fail(.readTimeout, .stream) = machine.readTimerFired(exchange: 1, now: later) else { Issue.record("no read timeout"); return }
    }

    @Test("closes and errors: an abrupt close before any answer leaves the verdict to the close (a retry may follow); during an answer it fails the reader")
    func closes() {
        struct Reset: Error {}
        var kept = Self.begun()
        guard case .retire = kept.errorCaught(Reset(), abruptClose: true) else { Issue.record("not retired"); return }
        guard case .fail(.closedBeforeAnswer(written: true), .answer) = kept.channelClosed() else { Issue.record("no closed-before-answer"); return }

        var unsent = Self.begun(written: false)
        guard case .fail(.closedBeforeAnswer(written: false), .answer) = unsent.requestWritten(exchange: 1, error: Reset()) else {
            Issue.record("a failed write is not closed-before-answer"); return
        }

        var streaming = Self.begun()
        _ = streaming.receivedHead(Self.head(), now: Self.start)
        _ = streaming.readComplete()
        guard case .fail(.remoteClosed, .stream) = streaming.channelClosed() else { Issue.record("the reader was not failed"); return }

        var headOnly = Self.begun()
        _ = headOnly.receivedHead(Self.head(), now: Self.start)
        guard case .fail(.channel, .streamAfterHead(_, nil, exchange: 1)) = headOnly.errorCaught(Reset(), abruptClose: true) else {
            Issue.record("a head read is not handed over before the error"); return
        }

        var idle = Machine()
        #expect(idle.channelClosed().isNone && idle.phase == .closed)
    }

    @Test("a 101, bytes nobody asked for and parts out of order are unexpected answers; the caller's cancellation closes the exchange")
    func unexpectedAndCancelled() {
        var upgrade = Self.begun()
        guard case .fail(.unexpectedAnswer, .answer) = upgrade.receivedHead(Self.head(.switchingProtocols), now: Self.start) else { Issue.record("101 accepted"); return }
        var idle = Machine()
        guard case .fail(.unexpectedAnswer, .nobody) = idle.receivedBody(ByteBuffer(string: "x"), now: Self.start) else { Issue.record("bytes while idle"); return }
        var early = Self.begun()
        guard case .fail(.unexpectedAnswer, .answer) = early.receivedBody(ByteBuffer(string: "x"), now: Self.start) else { Issue.record("body before head"); return }

        var waiting = Self.begun()
        #expect(waiting.cancelled(current: false).isNone, "another caller's cancellation")
        guard case .fail(.cancelled(requestSent: true), .answer) = waiting.cancelled(current: true) else { Issue.record("not cancelled"); return }
        #expect(waiting.receivedEnd(now: Self.start).isNone, "parts after the close are dropped")
    }

    @Test("an idle kept connection closes after the idle timeout unless another exchange began; a reader who left closes it")
    func idleAndLeaving() {
        var machine = Self.begun()
        _ = machine.receivedHead(Self.head(), now: Self.start)
        _ = machine.receivedEnd(now: Self.start)
        guard case .scheduleIdleClose(exchange: 1) = machine.keptIdle() else { Issue.record("no idle close"); return }
        _ = machine.begin(channelActive: true, now: Self.start, deadline: Self.start + .seconds(1), readTimeout: Self.timeout)
        #expect(machine.idleTimeoutPassed(exchange: 1).isNone, "exchange 2 began")

        var leaving = Self.begun()
        _ = leaving.receivedHead(Self.head(), now: Self.start)
        _ = leaving.readComplete()
        guard case .retire = leaving.readerLeft(exchange: 1) else { Issue.record("not closed"); return }
        #expect(leaving.phase == .closed)
    }
}

/// The handler carrying out the machine's actions, on an embedded channel: parts in, the caller's answer out.
@Suite("Vendor exchange handler on an embedded channel")
struct VendorExchangeHandlerEmbeddedTests {
    static func request() -> HTTPRequestHead { HTTPRequestHead(version: .http1_1, method: .GET, uri: "/v1/models", headers: ["host": "vendor"]) }

    @Test("a request is written, a whole answer reaches the caller and the connection is handed back to the pool")
    func wholeAnswerHandsTheConnectionBack() throws {
        let channel = EmbeddedChannel()
        let handler = VendorExchangeHandler(flags: VendorConnection.Flags())
        var keptIdle = false
        handler.becameIdle = { keptIdle = true }
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
        let answer = channel.eventLoop.makePromise(of: VendorExchangeHandler.Answer.self)
        handler.begin(Self.request(), body: nil, answer: answer, deadline: .now() + .seconds(30), readTimeout: .seconds(61))
        guard case .head(let sent) = try channel.readOutbound(as: HTTPClientRequestPart.self) else { Issue.record("no head written"); return }
        #expect(sent.uri == "/v1/models")
        // The whole answer in one read (`writeInbound` would end a read after each part: the body would stream).
        channel.pipeline.fireChannelRead(HTTPClientResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok)))
        channel.pipeline.fireChannelRead(HTTPClientResponsePart.body(ByteBuffer(string: "{}")))
        channel.pipeline.fireChannelRead(HTTPClientResponsePart.end(nil))
        channel.pipeline.fireChannelReadComplete()
        let answered = try answer.futureResult.wait()
        guard case .complete(let body) = answered.body else { Issue.record("not whole"); return }
        #expect(answered.head.status == .ok && String(buffer: body) == "{}" && keptIdle)
        _ = try? channel.finish()
    }

    @Test("the deadline, advanced on the embedded loop, fails the caller with deadlineExceeded once the request was written")
    func deadlineOnTheLoop() throws {
        let channel = EmbeddedChannel()
        let handler = VendorExchangeHandler(flags: VendorConnection.Flags())
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
        let answer = channel.eventLoop.makePromise(of: VendorExchangeHandler.Answer.self)
        let deadline = NIODeadline.now() + .seconds(30)
        handler.begin(Self.request(), body: nil, answer: answer, deadline: deadline, readTimeout: .seconds(61))
        channel.embeddedEventLoop.advanceTime(to: deadline)
        #expect(throws: HTTPClientError.deadlineExceeded) { try answer.futureResult.wait() }
        #expect(!channel.isActive, "the connection is closed, never reused")
    }
}

extension VendorExchangeStateMachine.Action {
    var isNone: Bool {
        if case .none = self { return true }
        return false
    }
}
