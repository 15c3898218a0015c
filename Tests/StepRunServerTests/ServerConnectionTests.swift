import Foundation
import NIOCore
import StepRunCore
import StepRunServer
import StepRunTesting
import StepRunWire
import Testing

/// The real StepRunServer on real sockets over a `ScriptedStore`: framing, Hello, in-flight
/// limits, duplicate ids, drain, idle timeout and back-pressure, with no database.
@Suite("Server connections over a scripted store")
struct ServerConnectionTests {
    static let call = Call.store(.getStepRun(runID: UUID(), step: "s"))

    func request(_ id: UInt64) -> RequestFrame {
        RequestFrame(id: id, call: Self.call)
    }

    func bytes(_ frames: RequestFrame...) -> [UInt8] {
        var buffer = ByteBuffer()
        for frame in frames { WireCodec.encodeRequest(frame, into: &buffer) }
        return Array(buffer.readableBytesView)
    }

    func connected(_ server: TestServer) async throws -> RawConnection {
        var connection = try await RawConnection.connect(.unix(path: server.unixPath))
        try await connection.hello(token: nil)
        return connection
    }

    func code(_ response: ResponseFrame?) -> StatusCode? {
        guard let response else { return nil }
        if case .failure(let error) = response.outcome { return error.code }
        return .ok
    }

    @Test("two frames in one write and a frame sent a byte at a time are each answered")
    func framing() async throws {
        let store = ScriptedStore()
        let server = try await TestServer.start(store: store)
        defer { server.server.shutdown() }
        var connection = try await connected(server)
        try await connection.write(bytes(request(2), request(3)))
        let first = try await connection.receive()?.id
        let second = try await connection.receive()?.id
        let ids = [first, second]
        #expect(Set(ids) == [2, 3])
        for byte in bytes(request(4)) { try await connection.write([byte]) }
        let answer = try await connection.receive()
        #expect(answer?.id == 4 && code(answer) == .notFound)
        #expect(store.started == 3)
        await connection.close()
    }

    @Test("a request before Hello is FAILED_PRECONDITION, not run, and the connection is closed")
    func helloFirst() async throws {
        let store = ScriptedStore()
        let server = try await TestServer.start(store: store)
        defer { server.server.shutdown() }
        var connection = try await RawConnection.connect(.unix(path: server.unixPath))
        try await connection.send(request(7))
        let answer = try await connection.receive()
        #expect(answer?.id == 7 && code(answer) == .failedPrecondition)
        let closed = try await connection.receive()
        #expect(closed == nil)
        #expect(store.started == 0)
    }

    @Test("past max-in-flight a request is RESOURCE_EXHAUSTED at once; the calls in flight are answered when the store ends them")
    func inFlightLimit() async throws {
        let store = ScriptedStore(holding: true)
        let server = try await TestServer.start(store: store, configure: { $0.maxInFlightPerConnection = 2 })
        defer { server.server.shutdown() }
        var connection = try await connected(server)
        try await connection.write(bytes(request(2), request(3), request(4)))
        let refused = try await connection.receive()
        #expect(refused?.id == 4 && code(refused) == .resourceExhausted)
        #expect(await eventually { store.waiting == 2 })
        store.release()
        let first = try await connection.receive()?.id
        let second = try await connection.receive()?.id
        let ids = [first, second]
        #expect(Set(ids) == [2, 3])
        await connection.close()
    }

    @Test("a request reusing an id in flight is refused with field id and not run; the first gets its one answer")
    func duplicateID() async throws {
        let store = ScriptedStore(holding: true)
        let server = try await TestServer.start(store: store)
        defer { server.server.shutdown() }
        var connection = try await connected(server)
        try await connection.send(request(5))
        #expect(await eventually { store.waiting == 1 })
        try await connection.send(request(5))
        let refused = try await connection.receive()
        guard case .failure(.invalidArgument(let field, _))? = refused?.outcome else {
            Issue.record("got \(String(describing: refused))")
            return
        }
        #expect(refused?.id == 5 && field == "id")
        #expect(store.started == 1)
        store.release()
        let answer = try await connection.receive()
        #expect(answer?.id == 5 && code(answer) == .notFound)
        await connection.close()
    }

    @Test("on graceful shutdown new requests are UNAVAILABLE, the call in flight is answered, then the connection closes")
    func drain() async throws {
        let store = ScriptedStore(holding: true)
        let server = try await TestServer.start(store: store)
        var connection = try await connected(server)
        try await connection.send(request(2))
        #expect(await eventually { store.waiting == 1 })
        // Later calls are answered at once, so a request sent before the drain reaches the
        // connection is answered too, and the next one tries again.
        store.holding = false
        server.server.shutdown()
        var id: UInt64 = 3
        var refused = false
        let end = ContinuousClock.now.advanced(by: .seconds(20))
        while !refused, ContinuousClock.now < end {
            try await connection.send(request(id))
            let answer = try await connection.receive()
            #expect(answer?.id == id)
            refused = code(answer) == .unavailable
            id += 1
        }
        #expect(refused)
        store.release()
        let answer = try await connection.receive()
        #expect(answer?.id == 2 && code(answer) == .notFound)
        let closed = try await connection.receive()
        #expect(closed == nil)
    }

    @Test("a handshaken connection with nothing in flight is closed after the idle timeout")
    func idleTimeout() async throws {
        let server = try await TestServer.start(store: ScriptedStore(), configure: { $0.idleTimeout = .milliseconds(300) })
        defer { server.server.shutdown() }
        var connection = try await connected(server)
        let closed = try await connection.receive()
        #expect(closed == nil)
    }

    @Test("a client that sends requests without reading stops the server starting calls; once it reads, every one is answered")
    func backPressure() async throws {
        let output = try JSONPayload(validating: "{\"x\":\"" + String(repeating: "a", count: 32 << 10) + "\"}")
        let row = StepRun(
            id: UUID(), runID: UUID(), step: "s", status: .completed, input: .empty, output: output,
            insertedAt: Timestamp(microsecondsSinceEpoch: 0), updatedAt: Timestamp(microsecondsSinceEpoch: 0))
        let store = ScriptedStore { _ in .success(.foundStepRun(row)) }
        let server = try await TestServer.start(store: store)
        defer { server.server.shutdown() }
        let peer = try PosixSocket.connect(unixPath: server.unixPath)
        try await peer.hello()
        let count = 400
        try await peer.writeAll(Array((0..<count).map { bytes(request(UInt64($0 + 2))) }.joined()))
        // Wait until the server stops starting calls (unchanged for 500 ms), bounded in time.
        var last = -1
        var steadySince = ContinuousClock.now
        let end = ContinuousClock.now.advanced(by: .seconds(20))
        while ContinuousClock.now < end, store.started < count {
            let started = store.started
            if started != last {
                (last, steadySince) = (started, .now)
            } else if started > 0, ContinuousClock.now - steadySince > .milliseconds(500) {
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(store.started < count / 2, "the server answered \(store.started) of \(count) requests its peer did not read")
        var ids = Set<UInt64>()
        for _ in 0..<count {
            let answer = try #require(try await peer.readResponse())
            ids.insert(answer.id)
        }
        #expect(ids.count == count)
    }
}
