import KeywardenGateway
import Testing

/// The client connection's turns as plain values: parts are strings, actions are read back as strings.
@Suite("Client connection state machine")
struct ClientConnectionStateMachineTests {
    typealias Machine = ClientConnectionStateMachine<String>

    /// Every action the machine has for now, spelled `verb:part`.
    static func drain(_ machine: inout Machine) -> [String] {
        var out: [String] = []
        while let action = machine.nextAction() {
            switch action {
            case .forward(let part): out.append("forward:\(part)")
            case .startCall(let part): out.append("start:\(part)")
            case .feedCall(let part): out.append("feed:\(part)")
            case .discard(let part): out.append("discard:\(part)")
            case .forwardQuiesce: out.append("quiesce")
            case .read: out.append("read")
            case .close: out.append("close")
            }
        }
        return out
    }

    @Test("a gateway call and a router request pipelined behind it: the second waits for the first's answer, then goes on")
    func pipelinedRequestsTakeTurns() {
        var machine = Machine()
        machine.received("h1", .head(.gateway, closeAfter: false))
        machine.received("b1", .body)
        machine.received("e1", .end)
        machine.received("h2", .head(.router, closeAfter: false))
        machine.received("e2", .end)
        #expect(Self.drain(&machine) == ["start:h1", "feed:b1", "feed:e1"])
        // Reading goes on below the waiting bound (a client that leaves is still seen).
        machine.readRequested()
        #expect(Self.drain(&machine) == ["read"])
        machine.answerEnded()
        #expect(Self.drain(&machine) == ["forward:h2", "forward:e2"])
        #expect(machine.currentOwner == .router)
        // The router's answer ends: idle again; the next gateway call starts at once.
        machine.answerEnded()
        machine.received("h3", .head(.gateway, closeAfter: false))
        #expect(Self.drain(&machine) == ["start:h3"])
    }

    @Test("a router request ahead of a gateway call: the call starts only once the router's answer ended")
    func gatewayCallWaitsForTheRouter() {
        var machine = Machine()
        machine.received("h1", .head(.router, closeAfter: false))
        machine.received("e1", .end)
        machine.received("h2", .head(.gateway, closeAfter: false))
        machine.received("e2", .end)
        #expect(Self.drain(&machine) == ["forward:h1", "forward:e1"])
        machine.answerEnded()
        #expect(Self.drain(&machine) == ["start:h2", "feed:e2"])
    }

    @Test("an answer before the request's body ended: the rest of the body is discarded, and the next request waits for its end")
    func earlyAnswerDiscardsTheRestOfTheBody() {
        var machine = Machine()
        machine.received("h1", .head(.gateway, closeAfter: false))
        machine.received("b1", .body)
        #expect(Self.drain(&machine) == ["start:h1", "feed:b1"])
        machine.answerEnded()
        machine.received("b2", .body)
        machine.received("e1", .end)
        machine.received("h2", .head(.router, closeAfter: false))
        #expect(Self.drain(&machine) == ["discard:b2", "discard:e1", "forward:h2"])
    }

    @Test("Connection: close on a gateway call closes after its answer; later requests are not started")
    func closeAfterTheAnswer() {
        var machine = Machine()
        machine.received("h1", .head(.gateway, closeAfter: true))
        machine.received("e1", .end)
        machine.received("h2", .head(.gateway, closeAfter: false))
        #expect(Self.drain(&machine) == ["start:h1", "feed:e1"])
        machine.answerEnded()
        #expect(Self.drain(&machine) == ["close"])
        machine.received("h3", .head(.router, closeAfter: false))
        #expect(Self.drain(&machine) == ["discard:h3"])
    }

    @Test("a shutdown: idle or during the router's answer it is the router's; during a gateway call the connection closes after its answer")
    func quiesce() {
        var idle = Machine()
        idle.quiesce()
        #expect(Self.drain(&idle) == ["quiesce"])

        var routed = Machine()
        routed.received("h1", .head(.router, closeAfter: false))
        routed.quiesce()
        #expect(Self.drain(&routed) == ["forward:h1", "quiesce"])

        var calling = Machine()
        calling.received("h1", .head(.gateway, closeAfter: false))
        calling.received("e1", .end)
        calling.received("h2", .head(.router, closeAfter: false))
        calling.quiesce()
        #expect(Self.drain(&calling) == ["start:h1", "feed:e1"])
        calling.answerEnded()
        #expect(Self.drain(&calling) == ["close"])

        // A call answered before its body ended (a refusal): a shutdown closes at once, not when the body ends.
        var refused = Machine()
        refused.received("h1", .head(.gateway, closeAfter: false))
        refused.received("b1", .body)
        refused.answerEnded()
        _ = Self.drain(&refused)
        refused.quiesce()
        #expect(Self.drain(&refused) == ["close"])

        // A shutdown while a router request waits behind a call: nothing new begins after the call.
        var waiting = Machine()
        waiting.received("h1", .head(.router, closeAfter: false))
        waiting.received("e1", .end)
        waiting.received("h2", .head(.gateway, closeAfter: false))
        waiting.quiesce()
        #expect(Self.drain(&waiting) == ["forward:h1", "forward:e1", "quiesce"])
        waiting.answerEnded()
        #expect(!Self.drain(&waiting).contains("start:h2"))
    }

    @Test("a router request that asks Connection: close: the rest of its body still goes to the router; nothing pipelined after it is started")
    func routerCloseStopsTheConnection() {
        var early = Machine()
        early.received("h1", .head(.router, closeAfter: true))
        early.received("b1", .body)
        early.answerEnded()
        early.received("b2", .body)
        early.received("e1", .end)
        early.received("h2", .head(.router, closeAfter: false))
        #expect(Self.drain(&early) == ["forward:h1", "forward:b1", "forward:b2", "forward:e1", "discard:h2"])

        var machine = Machine()
        machine.received("h1", .head(.router, closeAfter: true))
        machine.received("e1", .end)
        machine.received("h2", .head(.gateway, closeAfter: false))
        machine.received("e2", .end)
        #expect(Self.drain(&machine) == ["forward:h1", "forward:e1"])
        machine.answerEnded()
        #expect(Self.drain(&machine).isEmpty, "the pipelined call must not reach a vendor")
        machine.received("h3", .head(.gateway, closeAfter: false))
        #expect(Self.drain(&machine) == ["discard:h3"])
    }

    @Test("reads stop while the call's body has no reader, or when too many parts wait, and resume when they are taken")
    func readsHeld() {
        var machine = Machine()
        machine.received("h1", .head(.gateway, closeAfter: false))
        _ = Self.drain(&machine)
        machine.bodyDemand(false)
        machine.readRequested()
        #expect(Self.drain(&machine).isEmpty)
        machine.bodyDemand(true)
        #expect(Self.drain(&machine) == ["read"])

        machine.received("e1", .end)
        for index in 0..<Machine.maximumWaiting { machine.received("w\(index)", .body) }
        _ = Self.drain(&machine)
        machine.readRequested()
        #expect(Self.drain(&machine).isEmpty, "a full queue holds the read")
        machine.answerEnded()
        let replayed = Self.drain(&machine)
        #expect(replayed.last == "read" && replayed.count == Machine.maximumWaiting + 1, "\(replayed)")
    }

    @Test("a decoding error in a call's body goes to the call, which answers, and the connection closes after; never to the router")
    func errorInTheCallsBody() {
        var machine = Machine()
        machine.received("h1", .head(.gateway, closeAfter: false))
        machine.received("b1", .body)
        machine.received("bad", .error)
        #expect(Self.drain(&machine) == ["start:h1", "feed:b1", "feed:bad"])
        machine.answerEnded()
        #expect(Self.drain(&machine) == ["close"])

        // Already answered (a refusal before the body ended): the connection closes at once.
        var answered = Machine()
        answered.received("h1", .head(.gateway, closeAfter: false))
        answered.answerEnded()
        _ = Self.drain(&answered)
        answered.received("bad", .error)
        #expect(Self.drain(&answered) == ["close"])
    }

    @Test("a call's reader that paused its body: once the call is answered, the rest of the body is read (and dropped)")
    func answerReleasesAPausedBody() {
        var machine = Machine()
        machine.received("h1", .head(.gateway, closeAfter: false))
        _ = Self.drain(&machine)
        machine.bodyDemand(false)
        machine.readRequested()
        #expect(Self.drain(&machine).isEmpty)
        machine.answerEnded()
        #expect(Self.drain(&machine) == ["read"])
    }

    @Test("a decoding error waits its turn like a part, then goes to the router; nothing starts after the connection closed")
    func errorsAndClosing() {
        var machine = Machine()
        machine.received("h1", .head(.gateway, closeAfter: false))
        machine.received("e1", .end)
        machine.received("bad", .error)
        #expect(Self.drain(&machine) == ["start:h1", "feed:e1"])
        machine.answerEnded()
        #expect(Self.drain(&machine) == ["forward:bad"])

        var closed = Machine()
        closed.channelClosed()
        closed.received("h1", .head(.gateway, closeAfter: false))
        closed.answerEnded()
        #expect(Self.drain(&closed) == ["discard:h1"])
    }
}
