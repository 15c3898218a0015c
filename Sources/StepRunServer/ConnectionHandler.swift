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
///
/// Every decision is `ConnectionStateMachine`'s; this class feeds it the channel's events and
/// carries out what it returns: writes, flushes, closes, timers, store calls and metrics.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let server: ServerContext
    private let transport: Transport
    private var logger: Logger
    private var context: ChannelHandlerContext?
    private var machine: ConnectionStateMachine
    private var handshakeTimer: Scheduled<Void>?
    /// Serves every in-flight request's deadline.
    private var deadlineTimer = DeadlineTimer()
    /// Answers finished on other threads, waiting for their hop to this event loop.
    private let inbox = AnswerInbox()

    init(server: ServerContext, transport: Transport) {
        self.server = server
        self.transport = transport
        self.logger = server.logger
        let configuration = server.configuration
        let policy = transport == .tcp && !configuration.allowInsecureTCP
            ? ConnectionStateMachine.HandshakePolicy(requiresToken: true, expectedToken: configuration.tcpToken) : .open
        self.machine = ConnectionStateMachine(handshake: policy, maxInFlight: configuration.maxInFlightPerConnection)
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
        server.metrics.connectionOpened()
        let open = server.openConnections.add(1, ordering: .relaxed).newValue
        switch machine.channelActive(openConnections: open, limit: server.configuration.maxConnections) {
        case .refuse(let limit):
            logger.warning("connection refused: too many connections", metadata: ["limit": "\(limit)"])
            send(ResponseFrame(id: 0, outcome: .failure(.resourceExhausted(
                "the server already has \(limit) connections open; try again later"))))
            closeFlushing()
            return
        case .awaitHello:
            break
        }
        logger.debug("connection opened")
        handshakeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(server.configuration.handshakeTimeout)) {
            [self] in
            guard machine.handshakeTimedOut() else { return }
            logger.notice("connection closed: no Hello within the handshake timeout")
            closeFlushing()
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        let closed = machine.channelInactive()
        if closed.wasCounted {
            server.openConnections.subtract(1, ordering: .relaxed)
            server.metrics.connectionClosed()
        }
        handshakeTimer?.cancel()
        deadlineTimer.cancel()
        for request in closed.cancelled {
            server.metrics.requestFinished(operation: request.operation, code: .cancelled, duration: .now - request.started)
            // Frees the caller's place if it is still waiting for a database connection; work that
            // has started is not interrupted, so a write either commits or does not, never halfway.
            request.cancel?.cancel()
        }
        logger.debug("connection closed")
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let earlier = machine.frameRead() {
            handle(earlier, context: context, last: false)
        }
        machine.keep(unwrapInboundIn(data), writable: context.channel.isWritable)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if let last = machine.readComplete() {
            handle(last, context: context, last: true)
        }
        if machine.burstEnded() { context.flush() }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        let burstUnderWay = machine.parkedFramesStarted()
        while let (payload, last) = machine.nextParkedFrame(writable: context.channel.isWritable) {
            handle(payload, context: context, last: last)
        }
        if machine.burstEnded(restoring: burstUnderWay) { context.flush() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is IdleStateHandler.IdleStateEvent:
            // The handler fires again a timeout after the last frame, so a connection idle after
            // its Hello is still closed on time.
            if machine.idleTimedOut() {
                logger.debug("closing idle connection")
                closeFlushing()
            }
        case is ServerDrainingEvent:
            if machine.drainStarted() { closeFlushing() }
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

    // MARK: Frames

    /// Handles one frame; `last` is false while more frames of the same burst are waiting.
    private func handle(_ payload: ByteBuffer, context: ChannelHandlerContext, last: Bool) {
        let frame: RequestFrame
        do {
            frame = try WireCodec.decodeRequest(payload)
        } catch {
            logger.debug("malformed request", metadata: ["error": "\(error.error.message)"])
            carryOut(machine.malformedFrame(requestID: error.requestID, error.error), frame: nil, context: context, last: last)
            return
        }
        carryOut(machine.frameReceived(frame), frame: frame, context: context, last: last)
    }

    private func carryOut(_ action: ConnectionStateMachine.FrameAction, frame: RequestFrame?, context: ChannelHandlerContext, last: Bool) {
        switch action {
        case .ignore:
            return
        case .answer(let response):
            send(response)
        case .refuseHandshake(let response):
            if case .failure(let error) = response.outcome {
                logger.notice("handshake refused", metadata: ["code": "\(error.code)", "reason": "\(error.message)"])
            }
            send(response)
            closeFlushing()
        case .accepted(let id, let protocolVersion, let clientName):
            handshakeTimer?.cancel()
            logger[metadataKey: "client"] = "\(clientName)"
            logger.debug("handshake complete")
            var reply = server.helloReply
            reply.protocolVersion = protocolVersion
            send(ResponseFrame(id: id, outcome: .success(.hello(reply))))
        case .run(let protocolVersion):
            guard let frame else { return }
            run(frame, protocolVersion: protocolVersion, context: context, last: last)
        }
    }

    private func run(_ frame: RequestFrame, protocolVersion: UInt32, context: ChannelHandlerContext, last: Bool) {
        switch frame.call {
        case .hello:
            return  // the machine answers a second Hello itself
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

    // MARK: Requests

    private func start(
        _ frame: RequestFrame, operation: String, writes: Bool, context: ChannelHandlerContext,
        _ work: (ServerContext, ContinuousClock.Instant, @escaping @Sendable (Result<Reply, StepRunError>) -> Void) -> StoreCallHandle
    ) {
        let (deadline, timeout) = server.deadline(timeoutMs: frame.timeoutMs)
        let id = frame.id
        let loop = context.eventLoop
        let expiry = NIODeadline.now() + TimeAmount(timeout)
        server.metrics.requestStarted()
        // Registered before the work starts: a store may complete at once, on this thread.
        let slot = machine.register(InFlightRequest(id: id, operation: operation, writes: writes, started: .now, deadline: expiry, timeout: timeout))
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
        machine.started(slot: slot, cancel: cancel)
    }

    /// An answer finished on this loop: while reading, `channelReadComplete` flushes it with the
    /// rest of the burst; otherwise (a task on this loop) it goes out at once.
    private func answerOnLoop(slot: UInt64, _ response: ResponseFrame) {
        finish(slot: slot, response)
        if !machine.isReading { flushAnswers() }
    }

    /// Writes the answers other threads posted since the last hop, then flushes them together.
    private func answerPosted() {
        for (slot, response) in inbox.take() {
            finish(slot: slot, response)
        }
        flushAnswers()
    }

    /// The store call in `slot` ended with `response`: answers it unless its deadline already did.
    private func finish(slot: UInt64, _ response: ResponseFrame) {
        guard let finished = machine.callFinished(slot: slot) else { return }
        let request = finished.request
        let code = finished.mustAnswer ? send(response, for: request) : request.code
        server.metrics.requestFinished(operation: request.operation, code: code, duration: .now - request.started)
        if finished.closeAfter { closeFlushing() }
    }

    private func armDeadlineTimer(by deadline: NIODeadline, on loop: any EventLoop) {
        deadlineTimer.fire(by: deadline, on: loop) { [self] in
            deadlineTimer.fired()
            expireRequests(on: loop)
        }
    }

    /// Answers every request past its deadline with `DEADLINE_EXCEEDED`, then re-arms for the next.
    private func expireRequests(on loop: any EventLoop) {
        let (expired, next) = machine.expire(now: .now())
        for request in expired {
            send(ResponseFrame(id: request.id, outcome: .failure(.deadlineExceeded(
                "the call did not finish within \(request.timeout); it may or may not have been applied"))))
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
        machine.wrote()
        return code
    }

    /// Closes the connection after flushing what was written: a close drops unflushed writes.
    private func closeFlushing() {
        flushAnswers()
        machine.closeRequested()
        context?.close(promise: nil)
    }

    /// Flushes the answers written since the last flush, if any.
    private func flushAnswers() {
        guard machine.takeFlush() else { return }
        context?.flush()
    }
}
