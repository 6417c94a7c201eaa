import KeywardenGateway
import Testing

/// The send timeout as plain values: the handler's events in (writability, the end written, a timer fired with the
/// bytes still waiting), the timers and the decision out. No clock, no socket.
@Suite("Send timeout")
struct SendTimeoutTests {
    static func watch() -> SendTimeout { SendTimeout(limit: .seconds(60)) }

    @Test("an answer the client takes arms nothing: writable all along, its end out at once")
    func fastPathArmsNothing() {
        var send = Self.watch()
        #expect(send.answerBegan(waiting: 0) == nil)
        // The end went out within its write: the handler reports the answer's end, not the end written.
        #expect(send.answerEnded() == nil)
        #expect(!send.isArmed && !send.isAnswering)
    }

    @Test("a streamed answer whose client stops reading: unwritable arms the timer; nothing taken by then abandons the call")
    func streamedStallIsAbandoned() {
        var send = Self.watch()
        #expect(send.answerBegan(waiting: 0) == nil)
        #expect(send.writabilityChanged(false, waiting: 70_000) == .arm(timer: 1))
        // Unwritable again (the handler hears of it once more): the stall goes on, its timer is kept.
        #expect(send.writabilityChanged(false, waiting: 70_000) == nil)
        #expect(send.deadlinePassed(timer: 1, waiting: 70_000) == .abandon)
        // Given up on: the connection's closing ends the answer; nothing more is armed.
        #expect(send.answerEnded() == nil)
        #expect(send.answerBegan(waiting: 0) == nil && send.writabilityChanged(false, waiting: 1) == nil)
    }

    @Test("a slow reader that takes some within each limit is not cut: the timer runs again for what is left")
    func slowReaderIsNotCut() {
        var send = Self.watch()
        _ = send.answerBegan(waiting: 0)
        #expect(send.writabilityChanged(false, waiting: 100_000) == .arm(timer: 1))
        #expect(send.deadlinePassed(timer: 1, waiting: 90_000) == .arm(timer: 2))
        #expect(send.deadlinePassed(timer: 2, waiting: 40_000) == .arm(timer: 3))
        // Then it takes nothing for a whole limit.
        #expect(send.deadlinePassed(timer: 3, waiting: 40_000) == .abandon)
    }

    @Test("the client drains: writable cancels the timer, and a late firing of it decides nothing")
    func drainedCancels() {
        var send = Self.watch()
        _ = send.answerBegan(waiting: 0)
        #expect(send.writabilityChanged(false, waiting: 70_000) == .arm(timer: 1))
        #expect(send.writabilityChanged(true, waiting: 30_000) == .cancel)
        #expect(send.deadlinePassed(timer: 1, waiting: 30_000) == nil)
        // A later stall has a timer of its own; the old number is not it.
        #expect(send.writabilityChanged(false, waiting: 70_000) == .arm(timer: 2))
        #expect(send.deadlinePassed(timer: 1, waiting: 70_000) == nil)
        #expect(send.deadlinePassed(timer: 2, waiting: 70_000) == .abandon)
    }

    @Test("a whole body written at once to a client that never reads: unwritable, then its end waits; bounded the same way")
    func wholeBodyStallIsAbandoned() {
        var send = Self.watch()
        #expect(send.answerBegan(waiting: 0) == nil)
        // Head, body and end in one write: the connection becomes unwritable within it, and the end is not out.
        #expect(send.writabilityChanged(false, waiting: 4_000_000) == .arm(timer: 1))
        #expect(send.endWritten(waiting: 4_000_000) == nil)
        #expect(send.deadlinePassed(timer: 1, waiting: 4_000_000) == .abandon)
    }

    @Test("an end that waits in a connection still writable (less than its high watermark waits) is timed too")
    func endWaitingWhileWritable() {
        var send = Self.watch()
        _ = send.answerBegan(waiting: 0)
        #expect(send.endWritten(waiting: 20_000) == .arm(timer: 1))
        // Becoming writable does not end it: the end still waits.
        #expect(send.writabilityChanged(true, waiting: 20_000) == nil)
        #expect(send.deadlinePassed(timer: 1, waiting: 20_000) == .abandon)
    }

    @Test("an end that goes out cancels the timer; the next answer on the connection starts untimed")
    func answerOutCancels() {
        var send = Self.watch()
        _ = send.answerBegan(waiting: 0)
        #expect(send.writabilityChanged(false, waiting: 70_000) == .arm(timer: 1))
        #expect(send.writabilityChanged(true, waiting: 10_000) == .cancel)
        #expect(send.endWritten(waiting: 10_000) == .arm(timer: 2))
        #expect(send.answerEnded() == .cancel)
        #expect(send.deadlinePassed(timer: 2, waiting: 0) == nil)
        #expect(send.answerBegan(waiting: 0) == nil)
        #expect(!send.isArmed)
    }

    @Test("no answer under way: unwritable (a router's answer) arms nothing; an answer begun on a full connection is timed")
    func onlyGatewayAnswersAreTimed() {
        var send = Self.watch()
        #expect(send.writabilityChanged(false, waiting: 80_000) == nil)
        #expect(send.endWritten(waiting: 80_000) == nil)
        // The router's answer still waits when a pipelined call's answer begins: the call's answer is stalled from the start.
        #expect(send.answerBegan(waiting: 80_000) == .arm(timer: 1))
        #expect(send.deadlinePassed(timer: 1, waiting: 80_000) == .abandon)
    }

    @Test("the connection closes while a timer runs: cancelled, and its firing decides nothing")
    func closedWhileArmed() {
        var send = Self.watch()
        _ = send.answerBegan(waiting: 0)
        #expect(send.writabilityChanged(false, waiting: 70_000) == .arm(timer: 1))
        #expect(send.answerEnded() == .cancel)
        #expect(send.deadlinePassed(timer: 1, waiting: 70_000) == nil)
    }
}
