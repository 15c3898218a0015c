import Foundation
import StepRunClient
import StepRunCore
@testable import StepRunPostgres
import StepRunWire
import Testing
import StepRunTesting

/// Reading large runs (SPEC.md): every list returns every element through the daemon, however
/// many responses it takes. The daemon under test has its limits set here: 256 KiB frames and the
/// 40 KiB payloads such a frame allows (six full fields must fit one response, docs/STORE.md), so a
/// run of twenty-five 36 KiB outputs (900 KiB) is more than three responses.
@Suite("Lists larger than one response")
struct PagingTests {
    static let maxFrameBytes = 256 << 10
    static let outputBytes = 36 << 10
    static let largeRunSteps = 25

    static func daemon() async throws -> TestDaemon {
        try await TestDaemon.start(repository: TestDaemon.shared().repository) {
            $0.maxFrameBytes = maxFrameBytes
            $0.storeLimits.maxPayloadBytes = 40 << 10
        }
    }

    /// A run of `count` completed steps, completed in reverse order of insertion, each with an
    /// output of about `outputBytes`; returns the steps in completion order.
    static func largeRun(_ client: StepRunClient, runID: UUID, count: Int = largeRunSteps, outputBytes: Int = outputBytes) async throws -> [String] {
        let steps = (0..<count).map { "step-\($0)" }
        var ids: [String: UUID] = [:]
        for step in steps {
            ids[step] = try await client.beginStep(runID: runID, step: step).0.id
        }
        for step in steps.reversed() {
            let output: JSONPayload = ["step": .string(step), "blob": .string(String(repeating: "x", count: outputBytes))]
            try await client.completeStep(stepRunID: ids[step]!, output: output)
        }
        return steps.reversed()
    }

    @Test("completed_outputs of a run larger than two frames returns every output, in completion order")
    func completedOutputsOfALargeRun() async throws {
        let daemon = try await Self.daemon()
        let client = daemon.client(.unix)
        let runID = UUID()
        let order = try await Self.largeRun(client, runID: runID)

        let outputs = try await client.completedOutputs(runID: runID)
        let steps = try outputs.map { (output) throws -> JSONValue? in try output.object["step"] }
        #expect(steps == order.map { .string($0) })
        var pages = 0
        for try await page in client.completedOutputsList(runID: runID).pages {
            pages += 1
            #expect(!page.elements.isEmpty)
        }
        #expect(pages >= 4, "900 KiB of outputs in 256 KiB frames takes at least four pages")
        await client.close()
    }

    @Test("issue 20's run: completed steps of 900 KiB each, more than the default 8 MiB frame in all, list whole, outputs and compensation")
    func stepsOf900KiBPastTheDefaultFrame() async throws {
        let daemon = try await TestDaemon.start(repository: TestDaemon.shared().repository) {
            $0.maxFrameBytes = WireProtocol.defaultMaxFrameBytes
            $0.storeLimits.maxPayloadBytes = 1 << 20
        }
        let client = daemon.client(.unix)
        let runID = UUID()
        let order = try await Self.largeRun(client, runID: runID, count: 10, outputBytes: 900 << 10)
        var pages = 0
        for try await _ in client.completedOutputsList(runID: runID).pages { pages += 1 }
        #expect(pages >= 2, "9 MiB of outputs cannot travel in one 8 MiB response")

        #expect(try await client.completedOutputs(runID: runID).count == order.count)
        #expect(try await client.completedStepRunsForCompensation(runID: runID).map(\.step) == order.reversed())
        await client.close()
    }

    @Test("completed_step_runs_for_compensation of a run larger than two frames returns every step run, newest first")
    func compensationOfALargeRun() async throws {
        let daemon = try await Self.daemon()
        let client = daemon.client(.tcp)
        let runID = UUID()
        let order = try await Self.largeRun(client, runID: runID)

        let stepRuns = try await client.completedStepRunsForCompensation(runID: runID)
        #expect(stepRuns.map(\.step) == order.reversed())
        #expect(stepRuns.allSatisfy { $0.output?.byteCount ?? 0 > Self.outputBytes })
        await client.close()
    }

    @Test("pages forced small (page_size 1 to 3) give every completed step once, in completion order", arguments: [1, 2, 3])
    func completedStepsInSmallPages(_ pageSize: Int) async throws {
        let daemon = try await TestDaemon.shared()
        let client = daemon.client(.unix)
        let runID = UUID()
        let steps = (0..<7).map { "s\($0)" }
        var ids: [UUID] = []
        for step in steps { ids.append(try await client.beginStep(runID: runID, step: step).0.id) }
        for id in ids.reversed() { try await client.completeStep(stepRunID: id, output: [:]) }

        var pages: [[String]] = []
        for try await page in client.completedStepsList(runID: runID, pageSize: pageSize).pages { pages.append(page.elements) }
        #expect(pages.flatMap { $0 } == steps.reversed())
        #expect(pages.dropLast().allSatisfy { $0.count == pageSize })
        #expect(pages.count == (steps.count + pageSize - 1) / pageSize)
        await client.close()
    }

    @Test("step_statuses in pages of 1 to 3 gives every step once, by name in byte order", arguments: [1, 2, 3])
    func stepStatusesInSmallPages(_ pageSize: Int) async throws {
        let daemon = try await TestDaemon.shared()
        let client = daemon.client(.unix)
        let runID = UUID()
        // Byte order differs from most collations: upper case before lower, "é" after "z".
        let steps = ["b", "B", "a", "é", "z", "Z", "a-1", "ab"]
        for step in steps { _ = try await client.scheduleStep(runID: runID, step: step) }

        var seen: [String] = []
        for try await entry in client.stepStatusesList(runID: runID, pageSize: pageSize) {
            #expect(entry.status == .pending)
            seen.append(entry.step)
        }
        #expect(seen == steps.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        #expect(try await client.stepStatuses(runID: runID).count == steps.count)
        await client.close()
    }

    @Test("list_attempts in pages of 1 to 3 gives every attempt once, by number", arguments: [1, 2, 3])
    func attemptsInSmallPages(_ pageSize: Int) async throws {
        let daemon = try await TestDaemon.shared()
        let client = daemon.client(.unix)
        let (stepRun, _) = try await client.beginStep(runID: UUID(), step: "retried")
        for _ in 0..<7 {
            let attempt = try await client.beginAttempt(stepRunID: stepRun.id)
            try await client.failAttempt(attemptID: attempt.id, error: ["n": .int(Int64(attempt.attemptNumber))])
        }
        let attempts = try await client.listAttemptsList(stepRunID: stepRun.id, pageSize: pageSize).collect()
        #expect(attempts.map(\.attemptNumber) == Array(1...7))
        await client.close()
    }

    @Test("list_attempts larger than one response returns every attempt")
    func attemptsLargerThanAFrame() async throws {
        let daemon = try await Self.daemon()
        let client = daemon.client(.unix)
        let (stepRun, _) = try await client.beginStep(runID: UUID(), step: "big-errors")
        for _ in 0..<8 {
            let attempt = try await client.beginAttempt(stepRunID: stepRun.id)
            try await client.failAttempt(attemptID: attempt.id, error: ["blob": .string(String(repeating: "e", count: Self.outputBytes))])
        }
        let attempts = try await client.listAttempts(stepRunID: stepRun.id)
        #expect(attempts.map(\.attemptNumber) == Array(1...8))
        await client.close()
    }

    @Test("a version 1 client gets the whole list when it fits one response, and FAILED_PRECONDITION page_required when not")
    func versionOneClients() async throws {
        let daemon = try await Self.daemon()
        let client = daemon.client(.unix)
        let small = UUID()
        let (stepRun, _) = try await client.beginStep(runID: small, step: "only")
        try await client.completeStep(stepRunID: stepRun.id, output: ["a": 1])
        let large = UUID()
        _ = try await Self.largeRun(client, runID: large)

        var raw = try await RawConnection.connect(daemon, .unix)
        try await raw.send(RequestFrame(id: 1, call: .hello(Hello(protocolVersion: 1, clientName: "v1", token: nil))))
        guard case .success(.hello(let reply))? = try await raw.receive()?.outcome else { throw StepRunError.internal("handshake failed") }
        #expect(reply.protocolVersion == 1)

        try await raw.send(RequestFrame(id: 2, call: .store(.completedOutputs(runID: small))))
        let whole = try await raw.receive()
        guard case .success(.store(.outputs(let outputs, nil)))? = whole?.outcome else { throw StepRunError.internal("unexpected \(String(describing: whole))") }
        #expect(outputs == [["a": 1]])

        try await raw.send(RequestFrame(id: 3, call: .store(.completedOutputs(runID: large))))
        let refused = try await raw.receive()
        guard case .failure(let failure)? = refused?.outcome else { throw StepRunError.internal("unexpected \(String(describing: refused))") }
        #expect(failure.code == .failedPrecondition)
        #expect(failure.message.contains("page_required"))
        #expect(failure.reason == "page_required", "the cause travels in details.reason, like stale_step_run")
        await raw.close()
        await client.close()
    }

    @Test("a version 1 client's whole list is bounded by its own 4 MiB frames: a 5 MiB list is page_required, not a frame it refuses")
    func versionOneClientsAreBudgetedToTheirFrames() async throws {
        let daemon = try await TestDaemon.start(repository: TestDaemon.shared().repository) {
            $0.maxFrameBytes = WireProtocol.defaultMaxFrameBytes
            $0.storeLimits.maxPayloadBytes = 1 << 20
        }
        let client = daemon.client(.unix)
        let runID = UUID()
        // Six 900 KiB outputs: within the server's 8 MiB frame, past a version 1 client's 4 MiB.
        _ = try await Self.largeRun(client, runID: runID, count: 6, outputBytes: 900 << 10)

        var raw = try await RawConnection.connect(daemon, .unix)
        try await raw.send(RequestFrame(id: 1, call: .hello(Hello(protocolVersion: 1, clientName: "v1", token: nil))))
        guard case .success(.hello)? = try await raw.receive()?.outcome else { throw StepRunError.internal("handshake failed") }
        try await raw.send(RequestFrame(id: 2, call: .store(.completedOutputs(runID: runID))))
        let refused = try await raw.receive()
        guard case .failure(let failure)? = refused?.outcome else { throw StepRunError.internal("unexpected \(String(describing: refused).prefix(200))") }
        #expect(failure.code == .failedPrecondition)
        #expect(failure.message.contains("page_required"))
        #expect(try await client.completedOutputs(runID: runID).count == 6, "a version 2 client still reads it, in pages")
        await raw.close()
        await client.close()
    }
}

/// A row stored before the size rules (or under a larger payload limit) can be larger than one
/// page's budget: its page holds it alone and the list goes on after it.
@Suite("Rows larger than a page's budget")
struct OversizedRowPagingTests {
    @Test("a first row over the page budget is served alone and the list goes on: nothing after it is dropped")
    func anOversizedFirstRowDoesNotEndTheList() async throws {
        let daemon = try await PagingTests.daemon()
        let client = daemon.client(.unix)
        let runID = UUID()
        var ids: [UUID] = []
        for step in ["big", "after-1", "after-2"] {
            let id = try await client.beginStep(runID: runID, step: step).0.id
            try await client.completeStep(stepRunID: id, output: ["step": .string(step)])
            ids.append(id)
        }
        // Over the page budget (frame less the list envelope) by its measure, still within one
        // frame: written through SQL, past the daemon's 40 KiB payload limit.
        let budget = PagingTests.maxFrameBytes - WireProtocol.listEnvelopeBytes
        let blob = budget + 100 - #"{"blob": ""}"#.utf8.count
        let pool = daemon.repository.pool
        let connection = try PGConnection(parameters: pool.configuration.connectionParameters)
        _ = try connection.simpleQuery("""
            UPDATE \(pool.configuration.schema).step_runs SET output = jsonb_build_object('blob', repeat('x', \(blob)))
            WHERE id = '\(ids[0].uuidString.lowercased())'
            """, context: "storing an oversized output")
        connection.close()

        var pages: [Int] = []
        for try await page in client.completedOutputsList(runID: runID).pages { pages.append(page.elements.count) }
        #expect(pages == [1, 2], "the oversized output alone, then the other two")
        let outputs = try await client.completedOutputs(runID: runID)
        #expect(outputs.count == 3)
        #expect(try outputs.last?.object["step"] == .string("after-2"))
        await client.close()
    }
}

/// A whole-list read through the client: the whole list, within one deadline.
@Suite("Whole lists through the client")
struct WholeListTests {
    @Test("perform with a whole-list request (PageRequest.whole) gives the whole list through the client, as through the repository")
    func wholeListRequestGetsEveryPage() async throws {
        let daemon = try await PagingTests.daemon()
        let client = daemon.client(.unix)
        let runID = UUID()
        _ = try await PagingTests.largeRun(client, runID: runID)

        let throughClient = try await client.perform(.completedOutputs(runID: runID), deadline: nil)
        let throughRepository = try await daemon.repository.perform(.completedOutputs(runID: runID), deadline: nil)
        #expect(throughClient == throughRepository)
        guard case .outputs(let outputs, let next) = throughClient else {
            Issue.record("not completed_outputs: \(throughClient)")
            return
        }
        #expect(outputs.count == PagingTests.largeRunSteps && next == nil)
        await client.close()
    }

    @Test("a whole-list read's timeout bounds all its pages together, not each page")
    func wholeListTimeoutCoversEveryPage() async throws {
        let writer = try await TestDaemon.shared().client(.unix)
        let runID = UUID()
        _ = try await PagingTests.largeRun(writer, runID: runID)
        await writer.close()
        // Every call takes 500 ms; the run takes at least four pages of 256 KiB (2 s in all), each
        // well within the 1.5 s timeout on its own.
        let daemon = try await TestDaemon.slow(.milliseconds(500)) {
            $0.maxFrameBytes = PagingTests.maxFrameBytes
            $0.storeLimits.maxPayloadBytes = 40 << 10
        }
        let client = daemon.client(.unix)
        let error = await storeError { _ = try await client.completedOutputs(runID: runID, timeout: .milliseconds(1500)) }
        #expect(error?.code == .deadlineExceeded)
        await client.close()
    }
}
