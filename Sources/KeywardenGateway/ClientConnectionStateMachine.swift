/// One client connection's requests as values, answered in turn: each by the gateway's data plane on the event loop, or
/// by the router behind it (the management API and the pages).
///
/// The handler tells it what came in (a request's parts, a read asked for, a shutdown) and what went out (an answer's
/// end), then carries out the actions it hands back, one at a time, until ``nextAction()`` has none. It holds no channel
/// or part of its own meaning (`Part` is whatever the handler passes), so every path is tested with plain values.
///
/// HTTP/1.1 answers pipelined requests in order: a request that comes while another is being answered waits, with its
/// parts, until that one's answer ended and its body was read whole; while ``maximumWaiting`` parts wait, or the call's
/// body has no reader, no more is read from the client (below that, reading goes on, so a client that leaves is seen). A gateway call is answered by the data plane, so the router never sees it (nor counts it); the connection's
/// end after a `Connection: close` request or during a shutdown is decided here for those calls.
public struct ClientConnectionStateMachine<Part> {
    /// Who answers a request.
    public enum Owner: Equatable, Sendable {
        /// The data plane: a gateway call.
        case gateway
        /// The router behind the data plane.
        case router
    }

    /// What a part that came in is.
    public enum Kind: Equatable, Sendable {
        /// A request's head: who answers it, and whether the client asked to close after it (`Connection: close`).
        case head(Owner, closeAfter: Bool)
        case body
        case end
        /// A decoding error: the router answers it (400) and closes; within a gateway call's body, the call does.
        case error
    }

    /// What the handler does next.
    public enum Action {
        /// Pass the part on to the router.
        case forward(Part)
        /// Begin a gateway call with this head.
        case startCall(Part)
        /// Give the gateway call its request's part (a body part, the end, or a decoding error of its body).
        case feedCall(Part)
        /// A part of a call already answered: nothing needs it.
        case discard(Part)
        /// Tell the router to quiesce (the server is shutting down).
        case forwardQuiesce
        /// Ask the client for more.
        case read
        /// Close the connection.
        case close
    }

    /// The request being answered.
    struct Exchange {
        var owner: Owner
        var closeAfter: Bool
        var requestEnded = false
        var answerEnded = false
    }

    /// How many parts of later requests may wait before reading stops.
    public static var maximumWaiting: Int { 16 }

    private var current: Exchange?
    /// Parts of later requests, in the order they came.
    private var waiting: [(part: Part, kind: Kind)] = []
    private var waitingStart = 0
    private var actions: [Action] = []
    private var actionsStart = 0
    /// A read was asked for while requests waited or the call's body had no reader: it is passed on when they are done.
    private var readHeld = false
    /// The gateway call's body reader wants no more for now.
    private var bodyPaused = false
    /// The server is shutting down: the connection closes once the answer under way ended.
    private var quiescing = false
    /// The exchange under way is the connection's last (the router answered a request that asked to close).
    private var lastExchange = false
    private var closed = false

    public init() {}

    /// Who answers the request under way, if any.
    public var currentOwner: Owner? { current?.owner }

    /// Whether the connection closes after the answer under way (its answer says so: `Connection: close`).
    public var closesAfterAnswer: Bool { current?.closeAfter ?? false }

    // MARK: Events

    /// A part came from the client.
    public mutating func received(_ part: Part, _ kind: Kind) {
        guard !closed else { return actions.append(.discard(part)) }
        if waitingStart < waiting.count || current.map({ $0.requestEnded }) == true {
            // An earlier request is still being answered, or others wait before this one: it waits its turn.
            waiting.append((part, kind))
            return
        }
        take(part, kind)
    }

    /// The answer to the request under way was written whole (by the data plane, or by the router on its way out).
    public mutating func answerEnded() {
        guard var exchange = current, !exchange.answerEnded else { return }
        exchange.answerEnded = true
        current = exchange
        // Whatever the call's reader wanted, the rest of its body is now read and dropped.
        bodyPaused = false
        switch exchange.owner {
        case .gateway where exchange.closeAfter || quiescing:
            close()
            return
        case .router where exchange.closeAfter:
            // The router ends the connection after an answer to `Connection: close` (its request's body, if any, still
            // goes to it): nothing after this exchange is started.
            lastExchange = true
        case .gateway, .router:
            break
        }
        if exchange.requestEnded { finishExchange() } else { releaseHeldRead() }
    }

    /// The channel asked to read from the client.
    public mutating func readRequested() {
        if mustHoldReads {
            readHeld = true
        } else {
            actions.append(.read)
        }
    }

    /// The gateway call's body reader wants more (`true`) or no more for now (`false`).
    public mutating func bodyDemand(_ wanted: Bool) {
        bodyPaused = !wanted
        if wanted { releaseHeldRead() }
    }

    /// The server is shutting down: close once the answer under way ended, or now when none is.
    public mutating func quiesce() {
        quiescing = true
        switch current {
        case let exchange? where exchange.owner == .gateway:
            // The router does not know of the call: closed when its answer ends, or now if it has.
            if exchange.answerEnded { close() }
        case .some, nil:
            // The router closes after its own answer, or at once when idle.
            actions.append(.forwardQuiesce)
        }
    }

    /// The connection closed: nothing more is started.
    public mutating func channelClosed() {
        stopped()
        current = nil
    }

    /// Nothing more is started on this connection; what waits is dropped.
    private mutating func stopped() {
        closed = true
        waiting.removeAll()
        waitingStart = 0
    }

    /// The next thing to do, or `nil` when nothing is left.
    public mutating func nextAction() -> Action? {
        if actionsStart < actions.count {
            let action = actions[actionsStart]
            actionsStart += 1
            if actionsStart == actions.count {
                actions.removeAll(keepingCapacity: true)
                actionsStart = 0
            }
            return action
        }
        return nil
    }

    // MARK: Internals

    private mutating func take(_ part: Part, _ kind: Kind) {
        switch kind {
        case .head(let owner, let closeAfter):
            // Shutting down: nothing new begins.
            guard !quiescing else { return close() }
            current = Exchange(owner: owner, closeAfter: closeAfter)
            bodyPaused = false
            actions.append(owner == .gateway ? .startCall(part) : .forward(part))
        case .body, .end:
            guard var exchange = current else {
                // A part without a head: the router's decoder says what is wrong.
                actions.append(.forward(part))
                return
            }
            switch exchange.owner {
            case .router: actions.append(.forward(part))
            case .gateway: actions.append(exchange.answerEnded ? .discard(part) : .feedCall(part))
            }
            if kind == .end {
                exchange.requestEnded = true
                current = exchange
                if exchange.answerEnded { finishExchange() }
            }
        case .error:
            if var exchange = current, exchange.owner == .gateway, !exchange.requestEnded {
                // The call's own body cannot be read: the call learns it (it answers 400), and the connection closes
                // after its answer (the router must not answer a request it does not own).
                exchange.closeAfter = true
                current = exchange
                if exchange.answerEnded { close() } else { actions.append(.feedCall(part)) }
                return
            }
            // The router answers a request it cannot read, and closes.
            actions.append(.forward(part))
        }
    }

    /// The request under way was read whole and answered: the next waiting one begins.
    private mutating func finishExchange() {
        current = nil
        if lastExchange { return stopped() }
        // Shutting down: the router closes after its own answer (a call's answer closed the connection already, in
        // `answerEnded` or `quiesce`); nothing more begins.
        if quiescing { return }
        while current.map({ !$0.requestEnded }) ?? true, waitingStart < waiting.count {
            let (part, kind) = waiting[waitingStart]
            waitingStart += 1
            take(part, kind)
        }
        if waitingStart == waiting.count {
            waiting.removeAll(keepingCapacity: true)
            waitingStart = 0
        }
        releaseHeldRead()
    }

    private var mustHoldReads: Bool { bodyPaused || waiting.count - waitingStart >= Self.maximumWaiting }

    private mutating func releaseHeldRead() {
        guard readHeld, !mustHoldReads else { return }
        readHeld = false
        actions.append(.read)
    }

    private mutating func close() {
        guard !closed else { return }
        actions.append(.close)
        channelClosed()
    }
}
