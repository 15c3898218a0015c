import Foundation
import StepRunClient
import StepRunCore
import StepRunWire
import Testing
import StepRunTesting

@Suite("StepRunClient behaviour")
struct ClientTests {
    static func temporarySocketPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8)).sock").path
    }

    @Test("a request over the server's frame limit fails alone; the calls sharing its connection carry on", arguments: Transport.allCases)
    func oversizedRequestFailsAlone(_ transport: Transport) async throws {
        let shared = try await TestDaemon.shared()
        let slow = SlowStore(inner: shared.repository, delay: .milliseconds(500))
        let daemon = try await TestDaemon.start(repository: shared.repository, store: slow) {
            $0.maxFrameBytes = 64 << 10
            $0.storeLimits.maxPayloadBytes = 8 << 10
        }
        defer { daemon.server.shutdown() }
        // The client's own limit is the default 8 MiB; the server's 64 KiB comes from HelloReply.
        let client = daemon.client(transport)
        defer { Task { await client.close() } }
        #expect(try await client.connect().maxFrameBytes == 64 << 10)
        let runID = UUID()
        async let inFlight = client.beginStep(runID: runID, step: "slow")
        #expect(await eventually { slow.started.withLock { $0 } >= 1 })

        let big = JSONPayload(["blob": .string(String(repeating: "x", count: 100_000))])
        let error = await storeError { _ = try await client.beginStep(runID: runID, step: "big", input: big) }
        guard case .invalidArgument(let field, _)? = error else {
            Issue.record("expected invalidArgument, got \(String(describing: error))")
            return
        }
        #expect(field == "request")
        #expect(try await inFlight.1 == .execute)
        #expect(try await client.getStepRun(runID: runID, step: "big") == nil)
    }

    @Test("a call's timeout bounds the wait for a daemon that accepts but never answers Hello")
    func timeoutWhileConnecting() async throws {
        let path = Self.temporarySocketPath("hung")
        let listener = try PosixSocket.silentListener(unixPath: path)
        defer { unlink(path); _ = listener }
        let client = StepRunClient(target: .unix(path: path), configuration: .init(connectTimeout: .seconds(20)))
        let started = ContinuousClock.now
        let error = await storeError { _ = try await client.health(timeout: .milliseconds(300)) }
        let elapsed = ContinuousClock.now - started
        #expect(error?.code == .deadlineExceeded, "\(String(describing: error))")
        // Far below the 20 s connect timeout it would otherwise wait out.
        #expect(elapsed < .seconds(10), "gave up after \(elapsed)")
        await client.close()
    }

    @Test("cancelling a call's task ends its wait for a connection")
    func cancelWhileConnecting() async throws {
        let path = Self.temporarySocketPath("hung")
        let listener = try PosixSocket.silentListener(unixPath: path)
        defer { unlink(path); _ = listener }
        let client = StepRunClient(target: .unix(path: path), configuration: .init(connectTimeout: .seconds(20)))
        let started = ContinuousClock.now
        let call = Task { await storeError { _ = try await client.completedSteps(runID: UUID(), timeout: .seconds(20)) } }
        try await Task.sleep(for: .milliseconds(100))
        call.cancel()
        let error = await call.value
        #expect(error?.code == .cancelled, "\(String(describing: error))")
        #expect(ContinuousClock.now - started < .seconds(10))
        await client.close()
        #expect(ContinuousClock.now - started < .seconds(10), "close() waited for the hung attempt")
    }

    @Test("close() during a connection attempt returns at once and fails the waiting call")
    func closeWhileConnecting() async throws {
        let path = Self.temporarySocketPath("hung")
        let listener = try PosixSocket.silentListener(unixPath: path)
        defer { unlink(path); _ = listener }
        // Repeated, because the attempt may be cancelled at any point of its way to the Hello.
        for round in 0..<20 {
            let client = StepRunClient(target: .unix(path: path), configuration: .init(connectTimeout: .seconds(20)))
            let call = Task { await storeError { _ = try await client.health(timeout: .seconds(20)) } }
            if round % 2 == 1 { try await Task.sleep(for: .milliseconds(round)) }
            let started = ContinuousClock.now
            await client.close()
            #expect(ContinuousClock.now - started < .seconds(10), "close() took \(ContinuousClock.now - started) in round \(round)")
            #expect(await call.value?.code == .unavailable)
        }
    }

    @Test("a daemon that never answers Hello is UNAVAILABLE after the connect timeout")
    func helloNeverAnswered() async throws {
        let path = Self.temporarySocketPath("hung")
        let listener = try PosixSocket.silentListener(unixPath: path)
        defer { unlink(path); _ = listener }
        let client = StepRunClient(target: .unix(path: path), configuration: .init(connectTimeout: .milliseconds(300)))
        #expect(await storeError { try await client.connect() }?.code == .unavailable)
        await client.close()
    }

    @Test("nothing listening is UNAVAILABLE at once, and the client connects once a daemon is there")
    func connectsWhenTheDaemonAppears() async throws {
        let shared = try await TestDaemon.shared()
        let path = Self.temporarySocketPath("later")
        let client = StepRunClient(target: .unix(path: path))
        #expect(await storeError { _ = try await client.health() }?.code == .unavailable)
        let daemon = try await TestDaemon.start(repository: shared.repository) { $0.unixSocketPath = path }
        defer { daemon.server.shutdown() }
        #expect(try await client.health().serving)
        await client.close()
    }

    @Test("close is idempotent and later calls are UNAVAILABLE", arguments: Transport.allCases)
    func closeIsIdempotent(_ transport: Transport) async throws {
        let daemon = try await TestDaemon.shared()
        let client = daemon.client(transport)
        #expect(try await client.health().serving)
        await client.close()
        await client.close()
        #expect(await storeError { _ = try await client.health() }?.code == .unavailable)
    }

    @Test("Encodable values go in and come back out as payloads")
    func encodablePayloads() async throws {
        struct Order: Codable, Equatable {
            var id: Int
            var items: [String]
        }
        let daemon = try await TestDaemon.shared()
        let client = daemon.client(.unix)
        defer { Task { await client.close() } }
        let order = Order(id: 7, items: ["tea", "cake"])
        let (stepRun, _) = try await client.beginStep(runID: UUID(), step: "order", input: try JSONPayload(encoding: order))
        #expect(try stepRun.input.decode(Order.self) == order)
        let completed = try await client.completeStep(stepRunID: stepRun.id, output: try JSONPayload(encoding: ["total": 12]))
        #expect(try completed.output?.decode([String: Int].self) == ["total": 12])
    }

    @Test("tasks on the client's event loop (taskExecutor) make concurrent calls, and a deadline still fires", arguments: Transport.allCases)
    func callsFromTheEventLoop(_ transport: Transport) async throws {
        let daemon = try await TestDaemon.shared()
        let client = daemon.client(transport)
        defer { Task { await client.close() } }
        let runID = UUID()
        let outcomes = await failures(ofTasks: 64, on: client) { index in
            guard client.eventLoop.inEventLoop else { return "task \(index) is not on the client's loop" }
            let (stepRun, decision) = try await client.beginStep(runID: runID, step: "s\(index % 16)")
            guard client.eventLoop.inEventLoop else { return "task \(index) resumed off the loop" }
            if decision == .execute { try await client.completeStep(stepRunID: stepRun.id, output: ["i": .int(Int64(index))]) }
            return nil
        }
        #expect(outcomes.isEmpty, "\(outcomes)")
        #expect(try await client.completedSteps(runID: runID).count == 16)
        // A call that cannot finish in time is answered by its timer, which runs on the same loop.
        let slow = Task(executorPreference: client.taskExecutor) {
            await storeError { _ = try await client.getStepRun(runID: runID, step: "s0", timeout: .nanoseconds(1)) }
        }
        #expect(await slow.value?.code == .deadlineExceeded)
    }

    @Test("48 tasks on one connection run claim/complete rounds: answers and requests sent in batches each reach their own call", arguments: Transport.allCases)
    func batchedAnswersReachTheirCalls(_ transport: Transport) async throws {
        // Answers that one group commit finishes for a connection leave in one write, and requests
        // that one burst of answers resumed leave in another: each must still reach its own call.
        let daemon = try await TestDaemon.shared()
        let client = daemon.client(transport)
        defer { Task { await client.close() } }
        let runID = UUID()
        let failed = await failures(ofTasks: 48, on: client) { worker in
            for round in 0..<10 {
                let step = "w\(worker)-r\(round)"
                let (stepRun, decision) = try await client.beginStep(runID: runID, step: step, input: ["w": .int(Int64(worker))])
                guard decision == .execute, stepRun.step == step, try stepRun.input.decode([String: Int].self) == ["w": worker] else {
                    return "\(step): answered \(decision) for \(stepRun.step) with \(stepRun.input)"
                }
                let completed = try await client.completeStep(stepRunID: stepRun.id, output: ["r": .int(Int64(round))])
                guard completed.id == stepRun.id, try completed.output?.decode([String: Int].self) == ["r": round] else {
                    return "\(step): completion answered for \(completed.step)"
                }
            }
            return nil
        }
        #expect(failed.isEmpty, "\(failed.prefix(5))")
        #expect(try await client.completedSteps(runID: runID).count == 480)
    }

    @Test("concurrent calls with different timeouts each fail DEADLINE_EXCEEDED at their own deadline, earliest first")
    func callsExpireInDeadlineOrder() async throws {
        let daemon = try await TestDaemon.slow(.seconds(5))
        defer { daemon.server.shutdown() }
        let client = daemon.client(.unix)
        defer { Task { await client.close() } }
        _ = try await client.connect()
        let started = ContinuousClock.now
        let finished = await withTaskGroup(of: (Int, StepRunError?, Duration).self) { group in
            for milliseconds in [1_500, 300, 900] {
                group.addTask {
                    let error = await storeError { _ = try await client.completedSteps(runID: UUID(), timeout: .milliseconds(milliseconds)) }
                    return (milliseconds, error, ContinuousClock.now - started)
                }
            }
            return await group.reduce(into: [(Int, StepRunError?, Duration)]()) { $0.append($1) }
        }
        #expect(finished.map(\.0) == [300, 900, 1_500])
        for (milliseconds, error, elapsed) in finished {
            #expect(error?.code == .deadlineExceeded, "\(milliseconds) ms: \(String(describing: error))")
            #expect(elapsed >= .milliseconds(milliseconds - 50) && elapsed < .milliseconds(milliseconds) + .seconds(2), "\(milliseconds) ms call ended after \(elapsed)")
        }
    }

    /// Runs `count` tasks on the client's event loop (`taskExecutor`) and collects what each
    /// reports wrong: its returned message, or the error it threw.
    private func failures(
        ofTasks count: Int, on client: StepRunClient, _ body: @escaping @Sendable (Int) async throws -> String?
    ) async -> [String] {
        await withTaskGroup(of: String?.self) { group in
            for index in 0..<count {
                group.addTask(executorPreference: client.taskExecutor) {
                    do { return try await body(index) } catch { return "task \(index): \(error)" }
                }
            }
            return await group.reduce(into: [String]()) { if let failure = $1 { $0.append(failure) } }
        }
    }
}
