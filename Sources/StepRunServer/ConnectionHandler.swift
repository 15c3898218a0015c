import Logging
import NIOCore
import StepRunCore
import StepRunWire

/// One client connection: handshake, limits, and concurrent dispatch of its requests.
///
/// Frames arrive already split by `FrameDecoder`. A store request is handed straight to the store
/// (`StepRunStore.start`); its completion hops back to the event loop, where the answer is written
/// whenever it is ready (clients match answers by id, in any order). No task sits in between: a call
/// crosses the event loop, a pool thread and the event loop again. All state here is confined to
/// the channel's event loop.
///
/// Answers are written as they come and flushed once per batch: once per read burst for answers
/// made while reading (`channelReadComplete`), and once per hop for answers a pool thread finished
/// (`AnswerInbox`: all the answers a group commit finished for this connection go out in one
/// write when many calls share the connection). `send` only writes; every batch ends in
/// `flushAnswers`, and every close goes through `closeFlushing`.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let server: ServerContext
    private let transport: Transport
    private var logger: Logger
    private var context: ChannelHandlerContext?
    private var handshaken = false
    /// The protocol version the client's Hello named (one this server speaks).
    private var protocolVersion = WireProtocol.oldestVersion
    private var draining = false
    private var counted = false
    /// Requests being worked on, by an internal slot number (client ids may repeat after an answer).
    private var inFlight: [UInt64: InFlightRequest] = [:]
    private var nextSlot: UInt64 = 0
    /// The client ids of the requests not yet answered: a second request with one of them is refused,
    /// since its answer could not be told apart from the first one's.
    private var unansweredIDs = Set<UInt64>()
    private var handshakeTimer: Scheduled<Void>?
    /// Serves every in-flight request's deadline.
    private var deadlineTimer = DeadlineTimer()
    /// Frames read while the peer was not taking its answers, handled once it does again. Reads stop
    /// meanwhile (`BackPressureHandler`), so this holds at most what one read cycle brought in.
    private var backlog = CircularBuffer<ByteBuffer>()
    /// Answers finished on other threads, waiting for their hop to this event loop.
    private let inbox = AnswerInbox()
    /// Set when an answer was written and not yet flushed.
    private var unflushed = false
    /// True from a read until `channelReadComplete`, which flushes what the read's frames answered.
    private var reading = false
    /// The latest frame of the current read burst, handled once the next arrives or the burst ends:
    /// only the last frame of a burst may block the loop (`mayBlockCaller`, an inline read) — an
    /// earlier one would hold up the frames behind it, serialising a shared connection's reads.
    private var held: ByteBuffer?

    init(server: ServerContext, transport: Transport) {
        self.server = server
        self.transport = transport
        self.logger = server.logger
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        logger[metadataKey: "transport"] = "\(transport.rawValue)"
        if let remote = context.channel.remoteAddress, transport == .tcp {
            logger[metadataKey: "peer"] = "\(remote)"
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        counted = true
        server.metrics.connectionOpened()
        let open = server.openConnections.add(1, ordering: .relaxed).newValue
        guard open <= server.configuration.maxConnections else {
            logger.warning("connection refused: too many connections", metadata: ["limit": "\(server.configuration.maxConnections)"])
            send(ResponseFrame(id: 0, outcome: .failure(.resourceExhausted(
                "the server already has \(server.configuration.maxConnections) connections open; try again later"))))
            closeFlushing()
            return
        }
        logger.debug("connection opened")
        handshakeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(server.configuration.handshakeTimeout)) {
            [self] in
            guard !handshaken else { return }
            logger.notice("connection closed: no Hello within the handshake timeout")
            closeFlushing()
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if counted {
            server.openConnections.subtract(1, ordering: .relaxed)
            server.metrics.connectionClosed()
        }
        handshakeTimer?.cancel()
        deadlineTimer.cancel()
        for (_, request) in inFlight {
            server.metrics.requestFinished(operation: request.operation, code: .cancelled, duration: .now - request.started)
            // Frees the caller's place if it is still waiting for a database connection; work that
            // has started is not interrupted, so a write either commits or does not, never halfway.
            request.cancel?.cancel()
        }
        inFlight.removeAll()
        unansweredIDs.removeAll()
        backlog.removeAll()
        held = nil
        logger.debug("connection closed")
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let payload = unwrapInboundIn(data)
        reading = true
        if let earlier = held {
            held = nil
            handle(earlier, context: context, last: false)
        }
        // Answering more while the peer is not reading would grow the outbound buffer without bound
        // (a small request can earn a large answer); park the frame until it catches up.
        guard context.channel.isWritable, backlog.isEmpty else {
            backlog.append(payload)
            return
        }
        held = payload
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if let last = held {
            held = nil
            handle(last, context: context, last: true)
        }
        reading = false
        flushAnswers()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // May fire in the middle of a read burst (a write crossing the high-water mark).
        let readingBefore = reading
        reading = true
        while context.channel.isWritable, context.channel.isActive, let payload = backlog.popFirst() {
            handle(payload, context: context, last: backlog.isEmpty)
        }
        reading = readingBefore
        if !reading { flushAnswers() }
        context.fireChannelWritabilityChanged()
    }

    /// Handles one frame; `last` is false while more frames of the same burst are waiting.
    private func handle(_ payload: ByteBuffer, context: ChannelHandlerContext, last: Bool) {
        let frame: RequestFrame
        do {
            frame = try WireCodec.decodeRequest(payload)
        } catch {
            logger.debug("malformed request", metadata: ["error": "\(error.error.message)"])
            if handshaken, let id = error.requestID, unansweredIDs.contains(id) {
                // Its error would read as the answer of the request in flight under that id, which
                // then would be answered twice: refused as a duplicate id is, that one keeps its answer.
                send(ResponseFrame(id: id, outcome: .failure(StepRunError.duplicateRequestID(id))))
                return
            }
            send(ResponseFrame(id: error.requestID ?? 0, outcome: .failure(error.error)))
            if !handshaken { closeFlushing() }
            return
        }
        guard frame.id != 0 else {
            // Id 0 answers a frame whose id cannot be read; a request numbered 0 would get an answer
            // indistinguishable from that one, so it is refused, as the first frame too.
            let error = StepRunError.invalidArgument(
                field: "id", message: "request id 0 is reserved for answers to unreadable frames; number requests from 1")
            if handshaken { send(ResponseFrame(id: 0, outcome: .failure(error))) } else { refuse(0, error) }
            return
        }
        guard handshaken else {
            handshake(frame)
            return
        }
        guard !draining else {
            send(ResponseFrame(id: frame.id, outcome: .failure(.unavailable("the server is shutting down; retry on another connection"))))
            return
        }
        guard !unansweredIDs.contains(frame.id) else {
            // Refused without running it; the earlier request with this id is answered as usual. The
            // refusal is the answer whose details name the field `id`.
            send(ResponseFrame(id: frame.id, outcome: .failure(StepRunError.duplicateRequestID(frame.id))))
            return
        }
        switch frame.call {
        case .hello:
            send(ResponseFrame(id: frame.id, outcome: .failure(.failedPrecondition("Hello was already received on this connection"))))
        case .health:
            start(frame, operation: "health", writes: false, context: context) { server, deadline, completion in
                let task = Task { completion(.success(.health(await server.health(deadline)))) }
                return StoreCallHandle { task.cancel() }
            }
        case .store(let call):
            // A list is cut into pages that fit one answer; a version 1 caller that sent no paging
            // field gets the whole list or an error telling it to page (docs/PROTOCOL.md §6).
            let budget = WireProtocol.listBudget(maxFrameBytes: server.configuration.maxFrameBytes, protocolVersion: protocolVersion)
            let request = call.served(maxBytes: budget, pagedConnection: protocolVersion >= WireProtocol.pagingVersion)
            start(frame, operation: request.operationName, writes: !request.isReadOnly, context: context) { server, deadline, completion in
                if last, let inline = server.inlineStore {
                    inline.startInline(request, deadline: deadline) { completion($0.map(Reply.store)) }
                } else {
                    server.store.start(request, deadline: deadline) { completion($0.map(Reply.store)) }
                }
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is IdleStateHandler.IdleStateEvent:
            // Before its Hello a connection has the handshake timeout (`handshakeTimer`), however
            // short the idle timeout: a client slow to send its Hello on a loaded machine was
            // closed by the idle timeout instead. The handler fires again a timeout after the
            // last frame, so a connection idle after its Hello is still closed on time.
            if handshaken, inFlight.isEmpty {
                logger.debug("closing idle connection")
                closeFlushing()
            }
        case is ServerDrainingEvent:
            draining = true
            if inFlight.isEmpty { closeFlushing() }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let tooLarge = error as? FrameTooLargeError, tooLarge.looksLikeTLS {
            // A TLS client on a plain listener. An answer in plain frames would only read as a broken
            // TLS record to it, so the connection is closed without one; the log says why.
            logger.notice("connection closed: the peer tried TLS on a plain (non-TLS) port; serve TLS with --tls-cert and --tls-key, or connect without TLS")
        } else if let tooLarge = error as? FrameTooLargeError {
            logger.notice("connection closed: oversized frame", metadata: ["length": "\(tooLarge.length)", "limit": "\(tooLarge.limit)"])
            send(ResponseFrame(id: 0, outcome: .failure(.invalidArgument(
                field: "frame", message: "frame of \(tooLarge.length) bytes exceeds the limit of \(tooLarge.limit); closing the connection"))))
        } else if !(error is ChannelError) {
            logger.debug("connection error", metadata: ["error": "\(error)"])
        }
        closeFlushing()
    }

    // MARK: Handshake

    private func handshake(_ frame: RequestFrame) {
        guard case .hello(let hello) = frame.call else {
            refuse(frame.id, .failedPrecondition("the first frame must be a Hello"))
            return
        }
        guard (WireProtocol.oldestVersion...WireProtocol.version).contains(hello.protocolVersion) else {
            refuse(frame.id, .failedPrecondition(
                "protocol version \(hello.protocolVersion) is not supported; this server speaks versions \(WireProtocol.oldestVersion) to \(WireProtocol.version)"))
            return
        }
        if transport == .tcp, !server.configuration.allowInsecureTCP {
            guard let expected = server.configuration.tcpToken, TokenCheck.matches(hello.token, expected: expected) else {
                refuse(frame.id, .unauthenticated("a valid token is required on TCP"))
                return
            }
        }
        handshaken = true
        protocolVersion = hello.protocolVersion
        handshakeTimer?.cancel()
        logger[metadataKey: "client"] = "\(hello.clientName)"
        logger.debug("handshake complete")
        var reply = server.helloReply
        reply.protocolVersion = protocolVersion
        send(ResponseFrame(id: frame.id, outcome: .success(.hello(reply))))
    }

    private func refuse(_ id: UInt64, _ error: StepRunError) {
        logger.notice("handshake refused", metadata: ["code": "\(error.code)", "reason": "\(error.message)"])
        send(ResponseFrame(id: id, outcome: .failure(error)))
        closeFlushing()
    }

    // MARK: Requests

    private func start(
        _ frame: RequestFrame, operation: String, writes: Bool, context: ChannelHandlerContext,
        _ work: (ServerContext, ContinuousClock.Instant, @escaping @Sendable (Result<Reply, StepRunError>) -> Void) -> StoreCallHandle
    ) {
        guard inFlight.count < server.configuration.maxInFlightPerConnection else {
            send(ResponseFrame(id: frame.id, outcome: .failure(.resourceExhausted(
                "\(server.configuration.maxInFlightPerConnection) requests are already in flight on this connection"))))
            return
        }
        let (deadline, timeout) = server.deadline(timeoutMs: frame.timeoutMs)
        let slot = nextSlot
        nextSlot &+= 1
        let id = frame.id
        let loop = context.eventLoop
        let expiry = NIODeadline.now() + TimeAmount(timeout)
        server.metrics.requestStarted()
        // Registered before the work starts: a store may complete at once, on this thread.
        inFlight[slot] = InFlightRequest(id: id, operation: operation, writes: writes, started: .now, deadline: expiry, timeout: timeout)
        unansweredIDs.insert(id)
        armDeadlineTimer(by: expiry, on: loop)
        let handler = NIOLoopBound(self, eventLoop: loop)
        let inbox = inbox
        let cancel = work(server, deadline) { outcome in
            let response = ResponseFrame(id: id, outcome: outcome)
            if loop.inEventLoop {
                handler.value.answerOnLoop(slot: slot, response)
            } else if inbox.post(slot: slot, response) {
                // The first answer since the last hop brings every later one with it.
                loop.execute { handler.value.answerPosted() }
            }
        }
        inFlight[slot]?.cancel = cancel
    }

    /// An answer finished on this loop: while reading, `channelReadComplete` flushes it with the
    /// rest of the burst; otherwise (a task on this loop) it goes out at once.
    private func answerOnLoop(slot: UInt64, _ response: ResponseFrame) {
        answer(slot: slot, response, final: true)
        if !reading { flushAnswers() }
    }

    /// Writes the answers other threads posted since the last hop, then flushes them together.
    private func answerPosted() {
        for (slot, response) in inbox.take() {
            answer(slot: slot, response, final: true)
        }
        flushAnswers()
    }

    /// Answers a request once; `final` marks the store call as finished, freeing its slot.
    private func answer(slot: UInt64, _ response: ResponseFrame, final: Bool) {
        guard var request = inFlight[slot] else { return }
        if !request.answered {
            request.answered = true
            unansweredIDs.remove(request.id)
            request.code = send(response, for: request)
        }
        if final {
            server.metrics.requestFinished(operation: request.operation, code: request.code, duration: .now - request.started)
            inFlight[slot] = nil
            if draining && inFlight.isEmpty { closeFlushing() }
        } else {
            inFlight[slot] = request
        }
    }

    private func armDeadlineTimer(by deadline: NIODeadline, on loop: any EventLoop) {
        deadlineTimer.fire(by: deadline, on: loop) { [self] in
            deadlineTimer.fired()
            expireRequests(on: loop)
        }
    }

    /// Answers every request past its deadline with `DEADLINE_EXCEEDED` (its slot stays taken until
    /// the store call really ends), then re-arms for the next deadline.
    private func expireRequests(on loop: any EventLoop) {
        let waiting = inFlight.lazy.filter { !$0.value.answered }.map { (key: $0.key, deadline: $0.value.deadline) }
        let (expired, next) = DeadlineTimer.due(waiting, now: .now())
        for slot in expired {
            guard let request = inFlight[slot] else { continue }
            answer(slot: slot, ResponseFrame(id: request.id, outcome: .failure(.deadlineExceeded(
                "the call did not finish within \(request.timeout); it may or may not have been applied"))), final: false)
        }
        flushAnswers()
        if let next, context != nil { armDeadlineTimer(by: next, on: loop) }
    }

    /// Writes one answer (to `request`, if given), returning its code; it leaves with `flushAnswers`.
    @discardableResult
    private func send(_ response: ResponseFrame, for request: InFlightRequest? = nil) -> StatusCode {
        var code = StatusCode.ok
        if case .failure(let error) = response.outcome { code = error.code }
        guard let context, context.channel.isActive else { return code }
        var buffer = context.channel.allocator.buffer(capacity: 512)
        let limit = server.configuration.maxFrameBytes
        let oversized = OversizedResult(operation: request?.operation, writes: request?.writes ?? false, limit: limit)
        if let size = WireCodec.encodeResponse(response, into: &buffer, maxFrameBytes: limit, oversized: oversized.error) {
            oversized.log(size: size, to: logger)
            code = oversized.error(size: size).code
        }
        context.write(wrapOutboundOut(buffer), promise: nil)
        unflushed = true
        return code
    }

    /// Closes the connection after flushing what was written: a close drops unflushed writes.
    private func closeFlushing() {
        flushAnswers()
        context?.close(promise: nil)
    }

    /// Flushes the answers written since the last flush, if any.
    private func flushAnswers() {
        guard unflushed else { return }
        unflushed = false
        context?.flush()
    }
}
