import Foundation
import StepRunClient
import StepRunCore
import StepRunPostgres
import ServiceLifecycle
import StepRunServer
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif
import StepRunTesting

/// Binds a Unix socket and closes it without unlinking, as a crashed process would.
func leaveStaleSocket(at path: String) throws {
    let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    guard let address = UnixSocketAddress(path: path) else { throw StepRunError.internal("path too long") }
    let result = address.withSockaddr { bind(descriptor, $0, $1) }
    guard result == 0 else { throw StepRunError.internal("bind failed") }
}

/// Delays every call, so a test can hold one in flight while something else happens.
final class SlowStore: StepRunStore {
    let inner: StepRunRepository
    let delay: Duration
    /// Counts calls that have reached the store.
    let started = Mutex(0)

    init(inner: StepRunRepository, delay: Duration) {
        self.inner = inner
        self.delay = delay
    }

    func perform(_ request: StoreRequest, deadline: ContinuousClock.Instant?) async throws -> StoreResult {
        started.withLock { $0 += 1 }
        try await Task.sleep(for: delay)
        return try await inner.perform(request, deadline: deadline)
    }
}

@Suite("Daemon lifecycle")
struct LifecycleTests {
    @Test("graceful shutdown finishes the call in flight, then stops accepting")
    func gracefulShutdownFinishesInFlight() async throws {
        let shared = try await TestDaemon.shared()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("slow-\(UUID().uuidString.prefix(8)).sock").path
        let store = SlowStore(inner: shared.repository, delay: .milliseconds(400))
        let server = StepRunServer(
            configuration: ServerConfiguration(unixSocketPath: path),
            store: store,
            health: { _ in .init(serving: true, databaseLatencyMicros: 0, message: "ok") },
            logger: TestDaemon.logger)
        let running = Task { try await server.run() }
        _ = try await server.listening()
        let client = StepRunClient(target: .unix(path: path))
        try await client.connect()
        let runID = UUID()
        async let inFlight = client.beginStep(runID: runID, step: "slow")
        for _ in 0..<500 where store.started.withLock({ $0 }) == 0 {
            try await Task.sleep(for: .milliseconds(10))
        }
        server.shutdown()
        let (stepRun, decision) = try await inFlight
        #expect(decision == .execute)
        #expect(stepRun.step == "slow")
        try await running.value
        #expect(!FileManager.default.fileExists(atPath: path))
        let late = StepRunClient(target: .unix(path: path))
        #expect(await storeError { try await late.connect() }?.code == .unavailable)
        await client.close()
    }

    @Test("in a ServiceGroup, graceful shutdown stops accepting, lets the call in flight finish, then run() returns")
    func serviceGroupGracefulShutdown() async throws {
        let shared = try await TestDaemon.shared()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("group-\(UUID().uuidString.prefix(8)).sock").path
        let store = SlowStore(inner: shared.repository, delay: .milliseconds(600))
        let server = StepRunServer(
            configuration: ServerConfiguration(unixSocketPath: path, tcp: ("127.0.0.1", 0), tcpToken: "t"),
            store: store, health: { _ in .init(serving: true, databaseLatencyMicros: 0, message: "ok") }, logger: TestDaemon.logger)
        let group = ServiceGroup(services: [server], logger: TestDaemon.logger)
        let running = Task { try await group.run() }
        let bound = try await server.listening()
        let client = StepRunClient(target: .unix(path: path))
        defer { Task { await client.close() } }
        try await client.connect()
        async let inFlight = client.beginStep(runID: UUID(), step: "slow")
        #expect(await eventually { store.started.withLock { $0 } >= 1 })

        await group.triggerGracefulShutdown()
        let late = StepRunClient(target: .tcp(host: "127.0.0.1", port: bound.tcpPort ?? 0, token: "t"))
        #expect(await eventually { await storeError { try await late.connect() }?.code == .unavailable })
        await late.close()
        #expect(try await inFlight.1 == .execute)
        try await running.value
    }

    @Test("a call still running when the shutdown grace period ends is cut off, and shutdown completes")
    func gracePeriodIsEnforced() async throws {
        let shared = try await TestDaemon.shared()
        let store = SlowStore(inner: shared.repository, delay: .seconds(5))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("grace-\(UUID().uuidString.prefix(8)).sock").path
        var configuration = ServerConfiguration(unixSocketPath: path)
        configuration.shutdownGracePeriod = .milliseconds(300)
        let server = StepRunServer(
            configuration: configuration, store: store,
            health: { _ in .init(serving: true, databaseLatencyMicros: 0, message: "ok") }, logger: TestDaemon.logger)
        let running = Task { try await server.run() }
        _ = try await server.listening()
        let client = StepRunClient(target: .unix(path: path))
        defer { Task { await client.close() } }
        let runID = UUID()
        async let cutOff = storeError { _ = try await client.beginStep(runID: runID, step: "too-slow", timeout: .seconds(10)) }
        #expect(await eventually { store.started.withLock { $0 } >= 1 })
        let started = ContinuousClock.now
        server.shutdown()
        try await running.value
        #expect(ContinuousClock.now - started < .seconds(4), "shutdown took \(ContinuousClock.now - started)")
        let cutOffError = await cutOff
        #expect(cutOffError?.code == .unavailable, "\(String(describing: cutOffError))")
        // The store call was cancelled before it reached the database.
        #expect(try await shared.repository.getStepRun(runID: runID, step: "too-slow") == nil)
    }

    @Test("a client reconnects by itself after the daemon restarts")
    func clientReconnects() async throws {
        let shared = try await TestDaemon.shared()
        let first = try await TestDaemon.start(repository: shared.repository)
        let client = StepRunClient(target: .unix(path: first.unixPath))
        _ = try await client.health()
        first.server.shutdown()
        // Once the daemon is gone, calls fail with UNAVAILABLE…
        var sawOutage = false
        for _ in 0..<500 where !sawOutage {
            sawOutage = await storeError { _ = try await client.health() }?.code == .unavailable
            if !sawOutage { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(sawOutage)

        // …and once a new one listens on the same path, the same client is served again.
        let second = try await TestDaemon.start(repository: shared.repository) { $0.unixSocketPath = first.unixPath }
        var served = false
        for _ in 0..<500 where !served {
            served = (try? await client.health().serving) == true
            if !served { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(served)
        second.server.shutdown()
        await client.close()
    }

    @Test("a stale socket file is replaced; a live one is not stolen")
    func socketFileOwnership() async throws {
        let shared = try await TestDaemon.shared()
        let other = StepRunServer(
            configuration: ServerConfiguration(unixSocketPath: shared.unixPath), store: shared.repository,
            health: { _ in .init(serving: true, databaseLatencyMicros: 0, message: "ok") }, logger: TestDaemon.logger)
        await #expect(throws: StepRunError.self) { try await other.run() }
        #expect(try await shared.client(.unix).health().serving)

        // A socket file nobody listens on (a crashed daemon's) is taken over.
        let stale = FileManager.default.temporaryDirectory.appendingPathComponent("stale-\(UUID().uuidString.prefix(8)).sock").path
        try leaveStaleSocket(at: stale)
        let revived = try await TestDaemon.start(repository: shared.repository) { $0.unixSocketPath = stale }
        #expect(try await revived.client(.unix).health().serving)
        revived.server.shutdown()
    }

    @Test("daemons started at once on one socket path: exactly one serves, the others are refused")
    func simultaneousStartsOnOnePath() async throws {
        let shared = try await TestDaemon.shared()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("race-\(UUID().uuidString.prefix(8)).sock").path
        try leaveStaleSocket(at: path)  // each of them would judge this stale and replace it
        let servers = (0..<8).map { _ in
            StepRunServer(
                configuration: ServerConfiguration(unixSocketPath: path), store: shared.repository,
                health: { _ in .init(serving: true, databaseLatencyMicros: 0, message: "ok") }, logger: TestDaemon.logger)
        }
        let runs = servers.map { server in Task { try await server.run() } }
        var serving: [StepRunServer] = []
        var refusals: [String] = []
        for server in servers {
            do {
                _ = try await server.listening()
                serving.append(server)
            } catch {
                refusals.append("\(error)")
            }
        }
        #expect(serving.count == 1, "\(refusals)")
        #expect(refusals.allSatisfy { $0.contains("another") }, "\(refusals)")
        let client = StepRunClient(target: .unix(path: path))
        #expect(try await client.health().serving)
        await client.close()
        for server in serving { server.shutdown() }
        for run in runs { _ = try? await run.value }
        // Once the owner has stopped, the path is free for the next daemon.
        let next = try await TestDaemon.start(repository: shared.repository) { $0.unixSocketPath = path }
        #expect(try await next.client(.unix).health().serving)
        next.server.shutdown()
    }
}
