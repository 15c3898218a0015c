import NIOCore
import StepRunCore
import StepRunWire

/// Every decision one client connection makes, as a value: the handshake, which frames run, the
/// in-flight limit, duplicate ids, deadlines, idle and drain closes, read back-pressure and when
/// answers are flushed. It performs nothing: each transition returns what to do, and
/// `ConnectionHandler` carries that out on the channel's event loop (which confines this value).
///
/// No transition allocates on the request path: actions are enums and small structs, and the
/// in-flight table is the one dictionary the connection always had.
struct ConnectionStateMachine {
    /// Where the connection is in its life.
    enum Phase: Equatable {
        /// Not yet active (nothing counted).
        case inactive
        /// Active; the first frame must be a Hello.
        case awaitingHello
        /// Handshaken at the protocol version the client's Hello named.
        case open(protocolVersion: UInt32)
        /// Graceful shutdown: new requests are refused, the connection closes once none is in flight.
        case draining(protocolVersion: UInt32)
        /// A close was asked for (refused handshake, idle, drained, error): frames are ignored.
        case closing
        /// The channel went inactive; everything was cancelled.
        case closed
    }

    /// What the handshake requires.
    struct HandshakePolicy {
        /// True on TCP without `--allow-insecure-tcp`: a Hello must present `expectedToken`.
        var requiresToken: Bool
        /// The token; with `requiresToken` and none configured, every Hello is refused.
        var expectedToken: String?

        /// No token (the Unix socket, or insecure TCP).
        static let open = HandshakePolicy(requiresToken: false, expectedToken: nil)
    }

    private(set) var phase = Phase.inactive
    private let handshakePolicy: HandshakePolicy
    private let maxInFlight: Int
    /// Requests being worked on, by an internal slot number (client ids may repeat after an answer).
    private var inFlight: [UInt64: InFlightRequest] = [:]
    private var nextSlot: UInt64 = 0
    /// The client ids of the requests not yet answered: a second request with one of them is refused,
    /// since its answer could not be told apart from the first one's.
    private var unansweredIDs = Set<UInt64>()
    /// Frames read while the peer was not taking its answers, handled once it does again. Reads stop
    /// meanwhile (`BackPressureHandler`), so this holds at most what one read cycle brought in.
    private var backlog = CircularBuffer<ByteBuffer>()
    /// The latest frame of the current read burst, handled once the next arrives or the burst ends:
    /// only the last frame of a burst may run inline on the loop — an earlier one would hold up the
    /// frames behind it, serialising a shared connection's reads.
    private var held: ByteBuffer?
    /// True from a read until the burst ends; answers made meanwhile are flushed at its end.
    private(set) var isReading = false
    /// Set when an answer was written and not yet flushed.
    private var unflushed = false

    init(handshake: HandshakePolicy, maxInFlight: Int) {
        self.handshakePolicy = handshake
        self.maxInFlight = maxInFlight
    }

    var inFlightCount: Int { inFlight.count }
    var isHandshaken: Bool {
        switch phase {
        case .open, .draining: true
        default: false
        }
    }

    // MARK: Activation and close

    enum ActivationAction: Equatable {
        /// Wait for the Hello (arm the handshake timeout).
        case awaitHello
        /// Over the connection limit: answer RESOURCE_EXHAUSTED and close.
        case refuse(limit: Int)
    }

    /// The channel became active while `openConnections` (this one included) are open.
    mutating func channelActive(openConnections: Int, limit: Int) -> ActivationAction {
        guard openConnections <= limit else {
            phase = .closing
            return .refuse(limit: limit)
        }
        phase = .awaitingHello
        return .awaitHello
    }

    /// A close is about to be asked for; true if this is the first ask (later ones are no-ops).
    @discardableResult
    mutating func closeRequested() -> Bool {
        switch phase {
        case .closing, .closed: return false
        default:
            phase = .closing
            return true
        }
    }

    /// What the channel going inactive leaves to undo.
    struct Closed {
        /// False when the channel was never active (or this is not the first inactive), so it is
        /// not counted as open.
        var wasCounted: Bool
        /// The requests still in flight: each is cancelled and counted as such.
        var cancelled: Dictionary<UInt64, InFlightRequest>.Values
    }

    /// The channel went inactive: everything in flight is dropped (its calls cancelled by the handler).
    mutating func channelInactive() -> Closed {
        let wasCounted = phase != .inactive && phase != .closed
        phase = .closed
        let cancelled = inFlight
        inFlight = [:]
        unansweredIDs.removeAll()
        backlog.removeAll()
        held = nil
        return Closed(wasCounted: wasCounted, cancelled: cancelled.values)
    }

    /// The handshake timeout fired: true if the connection must close (no Hello yet).
    mutating func handshakeTimedOut() -> Bool {
        guard phase == .awaitingHello else { return false }
        return closeRequested()
    }

    /// The idle timeout fired (no frame for that long): true if the connection must close. Before
    /// its Hello a connection has the handshake timeout instead, however short the idle timeout (a
    /// client slow to send its Hello on a loaded machine was closed by the idle timeout); with a
    /// call in flight it is waiting, not idle.
    mutating func idleTimedOut() -> Bool {
        guard isHandshaken, inFlight.isEmpty else { return false }
        return closeRequested()
    }

    /// The server started its graceful shutdown: true if the connection must close now (nothing in flight).
    mutating func drainStarted() -> Bool {
        switch phase {
        case .open(let version): phase = .draining(protocolVersion: version)
        case .awaitingHello: break
        default: return false
        }
        guard inFlight.isEmpty else { return false }
        return closeRequested()
    }

    // MARK: Reads and back-pressure

    /// A frame was read: returns the frame held before it, to handle now (it is not the last of
    /// its burst); then `keep` the new one.
    mutating func frameRead() -> ByteBuffer? {
        isReading = true
        defer { held = nil }
        return held
    }

    /// Keeps the frame just read: held until the next arrives or the burst ends, or parked while
    /// the peer is not taking its answers (`writable` false) — answering more would grow the
    /// outbound buffer without bound, as a small request can earn a large answer.
    mutating func keep(_ payload: ByteBuffer, writable: Bool) {
        if !writable || !backlog.isEmpty {
            backlog.append(payload)
        } else {
            held = payload
        }
    }

    /// The read burst ended: the held frame, to handle as the last of its burst. Call `burstEnded`
    /// once it is handled.
    mutating func readComplete() -> ByteBuffer? {
        defer { held = nil }
        return held
    }

    /// Starts handling parked frames (the channel became writable); returns whether a burst was
    /// already under way, for `burstEnded(restoring:)`. Writability may change in the middle of a
    /// read burst (a write crossing the high-water mark).
    mutating func parkedFramesStarted() -> Bool {
        defer { isReading = true }
        return isReading
    }

    /// The next parked frame to handle while the peer takes answers again, and whether it is the last.
    mutating func nextParkedFrame(writable: Bool) -> (payload: ByteBuffer, last: Bool)? {
        guard writable, !isClosing, let payload = backlog.popFirst() else { return nil }
        return (payload, backlog.isEmpty)
    }

    /// A burst of handling ended; true if written answers wait for a flush. `restoring` is what
    /// `parkedFramesStarted` returned: a burst under way before goes on (its end flushes).
    mutating func burstEnded(restoring: Bool = false) -> Bool {
        isReading = restoring
        return restoring ? false : takeFlush()
    }

    /// An answer was written (not yet flushed).
    mutating func wrote() {
        unflushed = true
    }

    /// True (once) when written answers wait for a flush.
    mutating func takeFlush() -> Bool {
        defer { unflushed = false }
        return unflushed
    }

    private func isUnanswered(_ id: UInt64) -> Bool {
        unansweredIDs.contains(id)
    }

    private var isClosing: Bool {
        phase == .closing || phase == .closed
    }

    // MARK: Frames

    /// What to do with one decoded (or undecodable) frame.
    enum FrameAction {
        /// Nothing: the connection is closing.
        case ignore
        /// Answer at once without running anything (a refusal the connection survives).
        case answer(ResponseFrame)
        /// The handshake was refused: answer, then close.
        case refuseHandshake(ResponseFrame)
        /// The Hello was accepted at `protocolVersion`: reply, cancel the handshake timeout.
        case accepted(id: UInt64, protocolVersion: UInt32, clientName: String)
        /// Run the call (`register` it first, then start it), at the connection's protocol version.
        case run(protocolVersion: UInt32)
    }

    /// A frame that could not be decoded: `requestID` is the id read from it, if any.
    mutating func malformedFrame(requestID: UInt64?, _ error: StepRunError) -> FrameAction {
        closingIfRefused(decideMalformed(requestID: requestID, error))
    }

    /// A decoded frame.
    mutating func frameReceived(_ frame: RequestFrame) -> FrameAction {
        closingIfRefused(decide(frame))
    }

    /// A refused handshake closes the connection: later frames of its burst are ignored.
    private mutating func closingIfRefused(_ action: FrameAction) -> FrameAction {
        if case .refuseHandshake = action { phase = .closing }
        return action
    }

    private func decideMalformed(requestID: UInt64?, _ error: StepRunError) -> FrameAction {
        switch phase {
        case .closing, .closed, .inactive: return .ignore
        case .awaitingHello: return .refuseHandshake(ResponseFrame(id: requestID ?? 0, outcome: .failure(error)))
        case .open, .draining:
            if let id = requestID, isUnanswered(id) {
                // Its error would read as the answer of the request in flight under that id, which
                // then would be answered twice: refused as a duplicate id is, that one keeps its answer.
                return .answer(ResponseFrame(id: id, outcome: .failure(.duplicateRequestID(id))))
            }
            return .answer(ResponseFrame(id: requestID ?? 0, outcome: .failure(error)))
        }
    }

    private mutating func decide(_ frame: RequestFrame) -> FrameAction {
        let version: UInt32
        switch phase {
        case .closing, .closed, .inactive:
            return .ignore
        case .awaitingHello:
            guard frame.id != 0 else { return .refuseHandshake(ResponseFrame(id: 0, outcome: .failure(.reservedRequestID))) }
            return hello(frame)
        case .draining:
            guard frame.id != 0 else { return .answer(ResponseFrame(id: 0, outcome: .failure(.reservedRequestID))) }
            // A reused in-flight id is refused as a duplicate while draining too, so the refusal
            // names the field `id` and cannot be taken for the earlier request's answer.
            guard !isUnanswered(frame.id) else {
                return .answer(ResponseFrame(id: frame.id, outcome: .failure(.duplicateRequestID(frame.id))))
            }
            return .answer(ResponseFrame(
                id: frame.id, outcome: .failure(.unavailable("the server is shutting down; retry on another connection"))))
        case .open(let protocolVersion):
            version = protocolVersion
        }
        guard frame.id != 0 else {
            // Id 0 answers a frame whose id cannot be read; a request numbered 0 would get an answer
            // indistinguishable from that one, so it is refused, as the first frame too.
            return .answer(ResponseFrame(id: 0, outcome: .failure(.reservedRequestID)))
        }
        guard !isUnanswered(frame.id) else {
            // Refused without running it; the earlier request with this id is answered as usual. The
            // refusal is the answer whose details name the field `id`.
            return .answer(ResponseFrame(id: frame.id, outcome: .failure(.duplicateRequestID(frame.id))))
        }
        if case .hello = frame.call {
            return .answer(ResponseFrame(id: frame.id, outcome: .failure(.failedPrecondition("Hello was already received on this connection"))))
        }
        guard inFlightCount < maxInFlight else {
            return .answer(ResponseFrame(id: frame.id, outcome: .failure(.resourceExhausted(
                "\(maxInFlight) requests are already in flight on this connection"))))
        }
        return .run(protocolVersion: version)
    }

    private mutating func hello(_ frame: RequestFrame) -> FrameAction {
        guard case .hello(let hello) = frame.call else {
            return .refuseHandshake(ResponseFrame(id: frame.id, outcome: .failure(.failedPrecondition("the first frame must be a Hello"))))
        }
        guard (WireProtocol.oldestVersion...WireProtocol.version).contains(hello.protocolVersion) else {
            return .refuseHandshake(ResponseFrame(id: frame.id, outcome: .failure(.failedPrecondition(
                "protocol version \(hello.protocolVersion) is not supported; this server speaks versions \(WireProtocol.oldestVersion) to \(WireProtocol.version)"))))
        }
        if handshakePolicy.requiresToken {
            guard let expected = handshakePolicy.expectedToken, TokenCheck.matches(hello.token, expected: expected) else {
                return .refuseHandshake(ResponseFrame(id: frame.id, outcome: .failure(.unauthenticated("a valid token is required on TCP"))))
            }
        }
        phase = .open(protocolVersion: hello.protocolVersion)
        return .accepted(id: frame.id, protocolVersion: hello.protocolVersion, clientName: hello.clientName)
    }

    // MARK: Calls

    /// Records a call that `frameReceived` said to run, before it starts (a store may complete at
    /// once, on this thread); returns its slot, which its answer names.
    mutating func register(_ request: InFlightRequest) -> UInt64 {
        let slot = nextSlot
        nextSlot &+= 1
        inFlight[slot] = request
        unansweredIDs.insert(request.id)
        return slot
    }

    /// The call in `slot` started; `cancel` frees its place if it is still waiting for a connection.
    mutating func started(slot: UInt64, cancel: StoreCallHandle) {
        inFlight[slot]?.cancel = cancel
    }

    /// How a finished call ends.
    struct Finished {
        /// The request, as registered (its `code` is the deadline's, if that answered first).
        var request: InFlightRequest
        /// False when the deadline already answered: the result is dropped.
        var mustAnswer: Bool
        /// True when the connection must close once this is written (it drained its last call).
        var closeAfter: Bool
    }

    /// The store finished the call in `slot`; nil when the connection forgot it (closed).
    mutating func callFinished(slot: UInt64) -> Finished? {
        guard let request = inFlight.removeValue(forKey: slot) else { return nil }
        if !request.answered { unansweredIDs.remove(request.id) }
        var closeAfter = false
        if case .draining = phase, inFlight.isEmpty { closeAfter = true }
        return Finished(request: request, mustAnswer: !request.answered, closeAfter: closeAfter)
    }

    /// A request past its deadline, answered `DEADLINE_EXCEEDED` (its slot stays taken until the
    /// store call really ends).
    struct Expired {
        var id: UInt64
        var operation: String
        var timeout: Duration
    }

    /// Marks every unanswered request due by `now` answered by its deadline, earliest first, and
    /// returns them with the earliest deadline still ahead (to re-arm for).
    mutating func expire(now: NIODeadline) -> (expired: [Expired], next: NIODeadline?) {
        let waiting = inFlight.lazy.filter { !$0.value.answered }.map { (key: $0.key, deadline: $0.value.deadline) }
        let (due, next) = DeadlineTimer.due(waiting, now: now)
        var expired: [Expired] = []
        expired.reserveCapacity(due.count)
        for slot in due {
            guard var request = inFlight[slot] else { continue }
            request.answered = true
            request.code = .deadlineExceeded
            inFlight[slot] = request
            unansweredIDs.remove(request.id)
            expired.append(Expired(id: request.id, operation: request.operation, timeout: request.timeout))
        }
        return (expired, next)
    }
}

extension StepRunError {
    /// The answer to a frame (well-formed or not) reusing the id of a request still in flight.
    static func duplicateRequestID(_ id: UInt64) -> StepRunError {
        .invalidArgument(field: "id", message: "request id \(id) is already in flight on this connection; this request was not run")
    }

    /// The answer to a request numbered 0, the id kept for answers to unreadable frames.
    static var reservedRequestID: StepRunError {
        .invalidArgument(field: "id", message: "request id 0 is reserved for answers to unreadable frames; number requests from 1")
    }
}
