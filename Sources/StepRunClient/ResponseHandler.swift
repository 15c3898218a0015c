import NIOCore
import StepRunCore
import StepRunWire

/// Matches responses to waiting calls by request id. Confined to the channel's event loop.
final class ResponseHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        var continuation: CheckedContinuation<Reply, any Error>
        var deadline: NIODeadline
    }

    /// Largest request sent: the smaller of the client's and the server's limit once Hello is answered.
    private var maxRequestBytes: Int
    private var context: ChannelHandlerContext?
    private var pending: [UInt64: Pending] = [:]
    private var closedReason: StepRunError?
    /// Serves every pending call's deadline.
    private var deadlineTimer = DeadlineTimer()
    /// Set while a flush of written requests is scheduled on the loop.
    private var flushScheduled = false

    init(maxFrameBytes: Int) {
        self.maxRequestBytes = maxFrameBytes
    }

    /// Applies the server's frame limit from its HelloReply to every later request.
    func limitRequests(to bytes: Int) {
        maxRequestBytes = bytes
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Sends one request and arranges for `continuation` to be resumed exactly once.
    func send(_ frame: RequestFrame, deadline: ContinuousClock.Instant, continuation: CheckedContinuation<Reply, any Error>) {
        guard let context, context.channel.isActive, closedReason == nil else {
            continuation.resume(throwing: closedReason ?? StepRunError.unavailable("the connection to steprund is closed"))
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: 256)
        do {
            try WireCodec.encodeRequest(frame, into: &buffer, maxFrameBytes: maxRequestBytes)
        } catch {
            continuation.resume(throwing: error)
            return
        }
        let expiry = NIODeadline.now() + TimeAmount(deadline - .now)
        pending[frame.id] = Pending(continuation: continuation, deadline: expiry)
        armDeadlineTimer(by: expiry, on: context.eventLoop)
        if pending.count == 1 && !flushScheduled {
            // The only call on this connection: nothing to wait for.
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        } else {
            context.write(wrapOutboundOut(buffer), promise: nil)
            scheduleFlush(context: context)
        }
    }

    /// Flushes after the work already queued on the loop. With several calls on the connection,
    /// answers arrive in bursts, and the tasks one burst resumed send their next requests first,
    /// so those leave in one write rather than one each.
    private func scheduleFlush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute { [self] in
            flushScheduled = false
            self.context?.flush()
        }
    }

    private func armDeadlineTimer(by deadline: NIODeadline, on loop: any EventLoop) {
        deadlineTimer.fire(by: deadline, on: loop) { [self] in
            deadlineTimer.fired()
            expireCalls(on: loop)
        }
    }

    /// Fails every call past its deadline, then re-arms for the next one.
    private func expireCalls(on loop: any EventLoop) {
        let (expired, next) = DeadlineTimer.due(pending.lazy.map { (key: $0.key, deadline: $0.value.deadline) }, now: .now())
        for id in expired {
            pending.removeValue(forKey: id)?.continuation.resume(
                throwing: StepRunError.deadlineExceeded("no answer from steprund before the deadline; the call may or may not have been applied"))
        }
        if let next { armDeadlineTimer(by: next, on: loop) }
    }

    /// Gives up on a call whose task was cancelled.
    func cancel(id: UInt64) {
        guard let entry = pending.removeValue(forKey: id) else { return }
        entry.continuation.resume(throwing: StepRunError.cancelled("the call was cancelled; it may or may not have been applied"))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let response: ResponseFrame
        do {
            response = try WireCodec.decodeResponse(unwrapInboundIn(data))
        } catch {
            // A response we cannot read leaves its caller unanswerable: fail everything and reconnect.
            failAll(.internal("undecodable response from steprund: \(error.error.message)"))
            context.close(promise: nil)
            return
        }
        guard let entry = pending.removeValue(forKey: response.id) else {
            if response.id == 0, case .failure(let error) = response.outcome {
                // The server could not tell which request failed (or refused the connection).
                failAll(error)
                context.close(promise: nil)
            }
            return
        }
        entry.continuation.resume(with: response.outcome.mapError { $0 as any Error })
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(.unavailable("the connection to steprund was lost; the call may or may not have been applied"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let tooLarge = error as? FrameTooLargeError, tooLarge.looksLikeTLS {
            failAll(.unavailable(
                "this endpoint speaks TLS; connect with TLS (StepRunClient.Configuration.tls, or steprunctl --tls-ca FILE)"))
        } else if let tooLarge = error as? FrameTooLargeError {
            failAll(.resourceExhausted("steprund sent a frame of \(tooLarge.length) bytes, over this client's limit of \(tooLarge.limit)"))
        }
        context.close(promise: nil)
    }

    private func failAll(_ error: StepRunError) {
        if closedReason == nil { closedReason = error }
        deadlineTimer.cancel()
        let waiting = pending
        pending.removeAll()
        for (_, entry) in waiting {
            entry.continuation.resume(throwing: error)
        }
    }
}
