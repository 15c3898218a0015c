import Foundation
import NIOCore
import StepRunCore
@testable import StepRunServer
import StepRunWire
import Testing

/// The connection's decisions, on the pure state machine: no channel, no clock, no store.
@Suite("Connection state machine")
struct ConnectionStateMachineTests {
    typealias Machine = ConnectionStateMachine

    static let call = Call.store(.getStepRun(runID: UUID(uuidString: "00000000-0000-7000-8000-000000000001")!, step: "s"))

    func machine(maxInFlight: Int = 8, token: Machine.HandshakePolicy = .open) -> Machine {
        var machine = Machine(handshake: token, maxInFlight: maxInFlight)
        let observed1 = machine.channelActive(openConnections: 1, limit: 10) == .awaitHello
        #expect(observed1)
        return machine
    }

    func handshaken(maxInFlight: Int = 8) -> Machine {
        var machine = machine(maxInFlight: maxInFlight)
        guard case .accepted = machine.frameReceived(RequestFrame(id: 1, call: .hello(Hello(clientName: "t", token: nil)))) else {
            Issue.record("Hello not accepted")
            return machine
        }
        return machine
    }

    /// Starts a call as the handler does: the machine says run, then registers it.
    func run(_ machine: inout Machine, id: UInt64, deadline: NIODeadline = .distantFuture) -> UInt64? {
        guard case .run = machine.frameReceived(RequestFrame(id: id, call: Self.call)) else { return nil }
        return machine.register(InFlightRequest(
            id: id, operation: "get_step_run", writes: false, started: .now, deadline: deadline, timeout: .seconds(1)))
    }

    func code(_ action: Machine.FrameAction) -> StatusCode? {
        switch action {
        case .answer(let response), .refuseHandshake(let response):
            if case .failure(let error) = response.outcome { return error.code }
            return .ok
        default: return nil
        }
    }

    @Test("over the connection limit a connection is refused and closing")
    func connectionLimit() {
        var machine = Machine(handshake: .open, maxInFlight: 8)
        let observed2 = machine.channelActive(openConnections: 11, limit: 10) == .refuse(limit: 10)
        #expect(observed2)
        #expect(machine.phase == .closing)
        let observed3 = machine.channelInactive().wasCounted
        #expect(observed3)
    }

    @Test("the first frame must be a Hello: anything else refuses the handshake, and later frames are ignored")
    func firstFrameMustBeHello() {
        var machine = machine()
        let action = machine.frameReceived(RequestFrame(id: 3, call: .health))
        guard case .refuseHandshake(let response) = action else { Issue.record("got \(action)"); return }
        #expect(response.id == 3)
        #expect(code(action) == .failedPrecondition)
        #expect(machine.phase == .closing)
        guard case .ignore = machine.frameReceived(RequestFrame(id: 1, call: .hello(Hello(clientName: "t", token: nil)))) else {
            Issue.record("a frame after the refusal was not ignored")
            return
        }
    }

    @Test("a Hello opens the connection at the version it names; an unsupported version is refused")
    func helloVersions() {
        var old = machine()
        guard case .accepted(let id, let version, let name) = old.frameReceived(
            RequestFrame(id: 9, call: .hello(Hello(protocolVersion: WireProtocol.oldestVersion, clientName: "w", token: nil)))) else {
            Issue.record("not accepted")
            return
        }
        #expect(id == 9 && version == WireProtocol.oldestVersion && name == "w")
        #expect(old.phase == .open(protocolVersion: WireProtocol.oldestVersion))
        var future = machine()
        let action = future.frameReceived(RequestFrame(id: 1, call: .hello(Hello(protocolVersion: WireProtocol.version + 1, clientName: "w", token: nil))))
        #expect(code(action) == .failedPrecondition)
        #expect(future.phase == .closing)
    }

    @Test("on TCP a Hello needs the token; with none configured every Hello is refused")
    func tokens() {
        let hello = { (token: String?) in RequestFrame(id: 1, call: .hello(Hello(clientName: "t", token: token))) }
        var wrong = machine(token: .init(requiresToken: true, expectedToken: "secret"))
        let observed4 = code(wrong.frameReceived(hello("guess"))) == .unauthenticated
        #expect(observed4)
        var right = machine(token: .init(requiresToken: true, expectedToken: "secret"))
        guard case .accepted = right.frameReceived(hello("secret")) else { Issue.record("refused the right token"); return }
        var unconfigured = machine(token: .init(requiresToken: true, expectedToken: nil))
        let observed5 = code(unconfigured.frameReceived(hello(""))) == .unauthenticated
        #expect(observed5)
    }

    @Test("id 0 refuses the handshake before Hello, and is answered INVALID_ARGUMENT after it, the connection staying open")
    func reservedID() {
        var before = machine()
        guard case .refuseHandshake = before.frameReceived(RequestFrame(id: 0, call: .hello(Hello(clientName: "t", token: nil)))) else {
            Issue.record("id 0 Hello not refused")
            return
        }
        var after = handshaken()
        let action = after.frameReceived(RequestFrame(id: 0, call: Self.call))
        guard case .answer(let response) = action else { Issue.record("got \(action)"); return }
        #expect(response.id == 0 && code(action) == .invalidArgument)
        #expect(after.isHandshaken)
    }

    @Test("a second Hello is FAILED_PRECONDITION and the connection stays open")
    func secondHello() {
        var machine = handshaken()
        let observed6 = code(machine.frameReceived(RequestFrame(id: 2, call: .hello(Hello(clientName: "t", token: nil))))) == .failedPrecondition
        #expect(observed6)
        #expect(machine.isHandshaken)
    }

    @Test("an id in flight is refused, well-formed or malformed; once answered it may be used again")
    func duplicateIDs() throws {
        var machine = handshaken()
        let observed7 = run(&machine, id: 5)
        let slot = try #require(observed7)
        let observed8 = code(machine.frameReceived(RequestFrame(id: 5, call: Self.call))) == .invalidArgument
        #expect(observed8)
        let malformed = machine.malformedFrame(requestID: 5, .invalidArgument(field: "step", message: "bad"))
        guard case .answer(let response) = malformed, case .failure(let error) = response.outcome else { Issue.record("got \(malformed)"); return }
        #expect(error.message.contains("already in flight"))
        let observed9 = machine.callFinished(slot: slot)
        let finished = try #require(observed9)
        #expect(finished.mustAnswer && !finished.closeAfter)
        let observed10 = run(&machine, id: 5) != nil
        #expect(observed10)
    }

    @Test("past the in-flight limit a request is RESOURCE_EXHAUSTED and not run")
    func inFlightLimit() {
        var machine = handshaken(maxInFlight: 2)
        let observed11 = run(&machine, id: 2) != nil
        #expect(observed11)
        let observed12 = run(&machine, id: 3) != nil
        #expect(observed12)
        let observed13 = code(machine.frameReceived(RequestFrame(id: 4, call: Self.call))) == .resourceExhausted
        #expect(observed13)
        #expect(machine.inFlightCount == 2)
    }

    @Test("a deadline answers the call once: the store's later result is dropped and the id is free at once")
    func deadlines() throws {
        var machine = handshaken()
        let now = NIODeadline.now()
        let observed14 = run(&machine, id: 2, deadline: now + .seconds(5))
        let late = try #require(observed14)
        let observed15 = run(&machine, id: 3, deadline: now + .seconds(1))
        let soon = try #require(observed15)
        let (expired, next) = machine.expire(now: now + .seconds(2))
        #expect(expired.map(\.id) == [3])
        #expect(next == now + .seconds(5))
        let observed16 = run(&machine, id: 3) != nil
        #expect(observed16)
        let observed17 = machine.callFinished(slot: soon)
        let finished = try #require(observed17)
        #expect(!finished.mustAnswer && finished.request.code == .deadlineExceeded)
        let observed18 = machine.callFinished(slot: late)?.mustAnswer == true
        #expect(observed18)
    }

    @Test("a graceful drain refuses new requests UNAVAILABLE, a reused in-flight id as a duplicate, and closes after the last call in flight")
    func drain() throws {
        var machine = handshaken()
        let observed19 = run(&machine, id: 2)
        let slot = try #require(observed19)
        let observed20 = !machine.drainStarted()
        #expect(observed20)
        let observed21 = code(machine.frameReceived(RequestFrame(id: 3, call: Self.call))) == .unavailable
        #expect(observed21)
        // The id still in flight is refused as a duplicate, not answered UNAVAILABLE under its id.
        let reused = code(machine.frameReceived(RequestFrame(id: 2, call: Self.call)))
        #expect(reused == .invalidArgument)
        let observed22 = machine.callFinished(slot: slot)?.closeAfter == true
        #expect(observed22)
        var quiet = handshaken()
        let observed23 = quiet.drainStarted()
        #expect(observed23)
        var unhandshaken = self.machine()
        let observed24 = unhandshaken.drainStarted()
        #expect(observed24)
    }

    @Test("the idle timeout closes only a handshaken connection with nothing in flight; the handshake timeout only one without Hello")
    func timeouts() throws {
        var waiting = machine()
        let observed25 = !waiting.idleTimedOut()
        #expect(observed25)
        let observed26 = waiting.handshakeTimedOut()
        #expect(observed26)
        var busy = handshaken()
        let observed27 = !busy.handshakeTimedOut()
        #expect(observed27)
        let observed28 = run(&busy, id: 2)
        let slot = try #require(observed28)
        let observed29 = !busy.idleTimedOut()
        #expect(observed29)
        _ = busy.callFinished(slot: slot)
        let observed30 = busy.idleTimedOut()
        #expect(observed30)
        #expect(busy.phase == .closing)
    }

    @Test("only the last frame of a read burst is handed over as last; earlier ones come out as the next arrives")
    func heldFrames() {
        var machine = handshaken()
        let (a, b) = (ByteBuffer(string: "a"), ByteBuffer(string: "b"))
        let observed31 = machine.frameRead() == nil
        #expect(observed31)
        machine.keep(a, writable: true)
        let observed32 = machine.frameRead() == a
        #expect(observed32)
        machine.keep(b, writable: true)
        let observed33 = machine.readComplete() == b
        #expect(observed33)
        #expect(machine.isReading)
        machine.wrote()
        let observed34 = machine.burstEnded()
        #expect(observed34)
        #expect(!machine.isReading)
        let observed35 = !machine.takeFlush()
        #expect(observed35)
    }

    @Test("frames read while the peer is not taking answers are parked, and handled in order once it is")
    func backPressure() {
        var machine = handshaken()
        let frames = (0..<3).map { ByteBuffer(string: "\($0)") }
        _ = machine.frameRead()
        machine.keep(frames[0], writable: false)
        _ = machine.frameRead()
        // Writable again in the middle of the burst: the backlog keeps its order.
        machine.keep(frames[1], writable: true)
        _ = machine.frameRead()
        machine.keep(frames[2], writable: false)
        let observed36 = machine.readComplete() == nil
        #expect(observed36)
        let observed37 = !machine.burstEnded()
        #expect(observed37)
        let before = machine.parkedFramesStarted()
        let observed38 = machine.nextParkedFrame(writable: false) == nil
        #expect(observed38)
        var handled: [ByteBuffer] = []
        var lasts: [Bool] = []
        while let (payload, last) = machine.nextParkedFrame(writable: true) {
            handled.append(payload)
            lasts.append(last)
        }
        #expect(handled == frames && lasts == [false, false, true])
        _ = machine.burstEnded(restoring: before)
    }

    @Test("going inactive hands back every call in flight to cancel, and forgets them")
    func inactive() throws {
        var machine = handshaken()
        let observed39 = run(&machine, id: 2)
        let slot = try #require(observed39)
        _ = try #require(run(&machine, id: 3))
        let closed = machine.channelInactive()
        #expect(closed.wasCounted && closed.cancelled.count == 2)
        let again = machine.channelInactive()
        #expect(!again.wasCounted && again.cancelled.isEmpty)
        let observed40 = machine.callFinished(slot: slot) == nil
        #expect(observed40)
        guard case .ignore = machine.frameReceived(RequestFrame(id: 4, call: Self.call)) else { Issue.record("not ignored"); return }
    }
}
