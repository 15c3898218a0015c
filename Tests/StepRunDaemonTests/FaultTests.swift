#if canImport(Glibc)
import Glibc
#endif
import Foundation
import StepRunClient
import StepRunCore
import Testing
import StepRunTesting

/// Short by default; `STEPRUN_RESILIENCE_FULL=1` (make test-resilience) runs the heavier versions.
let fullResilience = ProcessInfo.processInfo.environment["STEPRUN_RESILIENCE_FULL"] == "1"

/// Writers that claim and complete fresh steps until told to stop, remembering every write the
/// daemon acknowledged.
actor Writers {
    private(set) var acknowledged: [(runID: UUID, step: String)] = []
    private(set) var failures: [StepRunError] = []
    private(set) var worstFailureLatency: Duration = .zero
    private var stopped = false

    func stop() { stopped = true }
    var isStopped: Bool { stopped }
    func record(_ runID: UUID, _ step: String) { acknowledged.append((runID, step)) }
    func record(_ error: StepRunError, after latency: Duration) {
        failures.append(error)
        worstFailureLatency = max(worstFailureLatency, latency)
    }

    /// Runs `count` writers on their own clients; returns when `stop()` was called and they finished.
    nonisolated func run(count: Int, target: StepRunClient.Target, timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            for writer in 0..<count {
                group.addTask {
                    let client = StepRunClient(target: target, configuration: .init(defaultTimeout: timeout, connectTimeout: .seconds(1)))
                    let runID = UUID()
                    var index = 0
                    while await !self.isStopped {
                        index += 1
                        let step = "w\(writer)-\(index)"
                        let started = ContinuousClock.now
                        do {
                            let (stepRun, _) = try await client.beginStep(runID: runID, step: step)
                            try await client.completeStep(stepRunID: stepRun.id, output: ["n": .int(Int64(index))])
                            await self.record(runID, step)
                        } catch let error as StepRunError {
                            await self.record(error, after: ContinuousClock.now - started)
                            try? await Task.sleep(for: .milliseconds(20))
                        } catch {
                            await self.record(.internal("\(error)"), after: ContinuousClock.now - started)
                        }
                    }
                    await client.close()
                }
            }
        }
    }
}

/// Checks every acknowledged write is stored as completed; returns how many were lost.
func lostWrites(_ writes: [(runID: UUID, step: String)], via target: StepRunClient.Target) async throws -> Int {
    let client = StepRunClient(target: target)
    defer { Task { await client.close() } }
    var lost = 0
    for (runID, step) in writes where try await client.getStepRun(runID: runID, step: step)?.status != .completed {
        lost += 1
    }
    return lost
}

/// Resident memory of a process, from /proc.
func residentMiB(_ pid: pid_t) -> Double? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
        let kib = Double(line.split(separator: " ").dropFirst().first ?? "")
    else { return nil }
    return kib / 1024
}

@Suite("Faults", .serialized)
struct FaultTests {
    private func startDaemon(socket: String, database: String, extra: [String] = []) throws -> DaemonProcess {
        try DaemonProcess([Binaries.steprund, "serve", "--database-url", database, "--unix-socket", socket, "--log-level", "warning"] + extra)
    }

    @Test("daemon killed with SIGKILL under load: no acknowledged write is lost and clients reconnect by themselves")
    func daemonCrash() async throws {
        let socket = temporaryPath("crash") + ".sock"
        let database = try testDatabaseURL()
        var daemon = try startDaemon(socket: socket, database: database)
        #expect(await eventually { unixSocketAccepts(socket) }, "\(daemon.output)")
        let writers = Writers()
        let target = StepRunClient.Target.unix(path: socket)
        async let load: Void = writers.run(count: fullResilience ? 32 : 8, target: target, timeout: .seconds(5))
        let before = fullResilience ? 2000 : 50
        #expect(await eventually(timeout: .seconds(60)) { await writers.acknowledged.count >= before })

        await daemon.terminate(signal: SIGKILL)
        let acknowledgedBeforeCrash = await writers.acknowledged.count
        let restarted = ContinuousClock.now
        daemon = try startDaemon(socket: socket, database: database)  // replaces the dead daemon's socket file
        let probe = StepRunClient(target: target)
        #expect(await eventually { (try? await probe.health().serving) == true }, "\(daemon.output)")
        let restartToReady = ContinuousClock.now - restarted
        await probe.close()
        let resumed = acknowledgedBeforeCrash + (fullResilience ? 2000 : 50)
        #expect(await eventually(timeout: .seconds(60)) { await writers.acknowledged.count >= resumed })
        await writers.stop()
        await load

        let acknowledged = await writers.acknowledged
        #expect(acknowledgedBeforeCrash > 0)
        #expect(acknowledged.count > acknowledgedBeforeCrash, "the writers did not resume after the restart")
        #expect(try await lostWrites(acknowledged, via: target) == 0)
        print("fault: daemon crash — \(acknowledged.count) acknowledged writes, 0 lost; restart to ready \(restartToReady)")
        #expect(restartToReady < .seconds(10))
        await daemon.terminate()
    }

    @Test("Postgres stopped under load: callers get UNAVAILABLE within their deadlines; started again, the daemon serves within 2 s")
    func databaseOutage() async throws {
        let directory = temporaryPath("outage-pg")
        let port = freePort()
        let pgtmp = Binaries.repositoryRoot + "/scripts/pgtmp"
        #expect(await shell("'\(pgtmp)' init '\(directory)' && '\(pgtmp)' start '\(directory)' \(port)").status == 0)
        defer { Task { _ = await shell("'\(pgtmp)' destroy '\(directory)'") } }
        let socket = temporaryPath("outage") + ".sock"
        let daemon = try startDaemon(socket: socket, database: "postgresql://postgres@127.0.0.1:\(port)/postgres")
        #expect(await eventually { unixSocketAccepts(socket) }, "\(daemon.output)")
        let writers = Writers()
        let target = StepRunClient.Target.unix(path: socket)
        let deadline = Duration.seconds(2)
        async let load: Void = writers.run(count: 8, target: target, timeout: deadline)
        #expect(await eventually(timeout: .seconds(60)) { await writers.acknowledged.count >= 20 })

        #expect(await shell("'\(pgtmp)' stop '\(directory)'").status == 0)
        try await Task.sleep(for: fullResilience ? .seconds(5) : .seconds(1))
        #expect(await shell("'\(pgtmp)' start '\(directory)' \(port)").status == 0)
        let back = ContinuousClock.now
        let probe = StepRunClient(target: target)
        #expect(await eventually(timeout: .seconds(10)) { (try? await probe.beginStep(runID: UUID(), step: "probe")) != nil })
        let recovery = ContinuousClock.now - back
        await probe.close()
        try await Task.sleep(for: .milliseconds(500))
        await writers.stop()
        await load

        let failures = await writers.failures
        let worst = await writers.worstFailureLatency
        #expect(!failures.isEmpty, "the outage should have been noticed")
        #expect(failures.allSatisfy { $0.code == .unavailable || $0.code == .deadlineExceeded }, "\(failures.prefix(3))")
        #expect(worst <= deadline + .milliseconds(500), "a call hung for \(worst)")
        #expect(recovery < .seconds(2), "recovered after \(recovery)")
        #expect(try await lostWrites(await writers.acknowledged, via: target) == 0)
        print("fault: database outage — \(failures.count) failed calls, worst \(worst); served again \(recovery) after Postgres started")
        await daemon.terminate()
    }

    @Test("1,000 connections against a limit of 500: the excess is refused, admitted clients are served, memory stays bounded")
    func overload() async throws {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur < 4096 {
            limit.rlim_cur = min(limit.rlim_max, 8192)
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        let socket = temporaryPath("overload") + ".sock"
        let daemon = try startDaemon(socket: socket, database: try testDatabaseURL(), extra: ["--max-connections", "500"])
        #expect(await eventually { unixSocketAccepts(socket) }, "\(daemon.output)")
        let rssBefore = residentMiB(daemon.pid) ?? 0

        let total = fullResilience ? 2000 : 1000
        var descriptors: [Int32] = []
        for _ in 0..<total {
            if let descriptor = connectUnix(socket) { descriptors.append(descriptor) }
        }
        #expect(descriptors.count == total)
        // Connections past the limit are answered and closed; the rest stay open.
        _ = await eventually(timeout: .seconds(15)) { descriptors.filter { peerClosed($0) }.count >= total - 500 }
        try await Task.sleep(for: .milliseconds(200))
        let closed = descriptors.filter { peerClosed($0) }.count
        #expect(closed >= total - 500 - 5 && closed <= total - 500 + 5, "closed \(closed) of \(total)")
        let client = StepRunClient(target: .unix(path: socket))
        // With the server at its limit a new client is refused; after the flood goes away it is served.
        for descriptor in descriptors { close(descriptor) }
        #expect(await eventually { (try? await client.health().serving) == true })
        let rssAfter = residentMiB(daemon.pid) ?? 0
        print("fault: overload — \(total) connections, \(closed) refused; RSS \(Int(rssBefore)) MiB before, \(Int(rssAfter)) MiB after")
        #expect(rssAfter < 256)
        await client.close()
        await daemon.terminate()
    }

    @Test("a peer trickling half a frame before its Hello is reclaimed by the handshake timeout, a client that never reads by the idle timeout; others are served")
    func slowAndHalfOpenPeers() async throws {
        let socket = temporaryPath("slow") + ".sock"
        // Before its Hello a connection has the handshake timeout; the idle timeout counts from the Hello.
        let daemon = try startDaemon(
            socket: socket, database: try testDatabaseURL(), extra: ["--idle-timeout", "1s", "--handshake-timeout", "2s"])
        #expect(await eventually { unixSocketAccepts(socket) }, "\(daemon.output)")
        let trickler = try #require(connectUnix(socket))
        for byte: UInt8 in [0, 0, 0, 40, 0x08] {
            var value = byte
            _ = send(trickler, &value, 1, Int32(MSG_NOSIGNAL))
            try await Task.sleep(for: .milliseconds(200))
        }
        let deaf = try #require(connectUnix(socket))
        // Request{id: 1, hello: {protocol_version: 1}}, then 20 × Request{id: n, health: {}} — and never a read.
        var frames: [UInt8] = [0, 0, 0, 6, 0x08, 0x01, 0x52, 0x02, 0x08, 0x01]
        for id in 2..<22 { frames += [0, 0, 0, 4, 0x08, UInt8(id), 0x5A, 0x00] }
        _ = frames.withUnsafeBytes { send(deaf, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        let client = StepRunClient(target: .unix(path: socket))
        #expect(try await client.health().serving)
        // Both are closed by the daemon: the trickler 2 s after it connected, the deaf client once a
        // second passes with nothing from it.
        #expect(await eventually(timeout: .seconds(10)) { peerClosed(trickler) && peerClosed(deaf) })
        #expect(try await client.health().serving)
        close(trickler)
        close(deaf)
        await client.close()
        await daemon.terminate()
    }
}

/// A blocking Unix-socket connect (fast on a local listener).
func connectUnix(_ path: String) -> Int32? {
    let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    let result = UnixSocketAddress(path: path)?.withSockaddr { connect(descriptor, $0, $1) } ?? -1
    guard result == 0 else {
        close(descriptor)
        return nil
    }
    return descriptor
}

/// True when the daemon has closed its end (reads drain whatever it sent, then hit end-of-file).
func peerClosed(_ descriptor: Int32) -> Bool {
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = recv(descriptor, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        if count == 0 { return true }
        if count < 0 { return errno == ECONNRESET }
    }
}
