import Foundation
import NIOCore
import StepRunCore
import StepRunWire

/// The seed corpus: a valid frame of every call, plus edge cases the fuzzer should start from.
enum Corpus {
    static func seeds() -> [(String, [UInt8])] {
        let run = UUID(uuidString: "01936f4e-0000-7000-8000-000000000001")!
        let id = UUID(uuidString: "01936f4e-0000-7000-8000-000000000002")!
        let input: JSONPayload = ["amount": 42, "tags": ["a", "b"], "nested": ["k": .null, "f": 1.5]]
        let requests: [(String, StoreRequest)] = [
            ("begin_step", .beginStep(runID: run, step: "charge", input: input, recovery: ["undo": "refund"])),
            ("schedule_step", .scheduleStep(runID: run, step: "ship", input: .empty, recovery: nil)),
            ("schedule_steps", .scheduleSteps(runID: run, steps: [ScheduledStep(step: "a"), ScheduledStep(step: "b", input: input)])),
            ("delete_pending_steps", .deletePendingSteps(runID: run, steps: ["a", "b"])),
            ("complete_step", .completeStep(stepRunID: id, output: input)),
            ("complete_manual_step", .completeManualStep(stepRunID: id, output: .empty, manual: ["by": "ops"])),
            ("fail_step", .failStep(stepRunID: id, error: ["reason": "boom"])),
            ("persist_pause_resume", .persistPauseResume(stepRunID: id, output: .empty, target: .complete)),
            ("persist_approval_resume", .persistApprovalResume(stepRunID: id, okTarget: .step("ok"), errorTarget: .complete, outputKey: "k")),
            ("record_failure_recovery", .recordFailureRecovery(stepRunID: id, strategy: .compensation, target: "charge")),
            ("update_recovery", .updateRecovery(stepRunID: id, recovery: ["state": "running"])),
            ("get_step_run", .getStepRun(runID: run, step: "charge")),
            ("completed_steps", .completedSteps(runID: run)),
            ("completed_outputs", .completedOutputs(runID: run)),
            ("compensation", .completedStepRunsForCompensation(runID: run)),
            ("step_statuses", .stepStatuses(runID: run)),
            ("begin_attempt", .beginAttempt(stepRunID: id)),
            ("complete_attempt", .completeAttempt(attemptID: id)),
            ("fail_attempt", .failAttempt(attemptID: id, error: ["e": 1])),
            ("record_attempt", .recordAttempt(stepRunID: id, attemptNumber: 3, status: .failed, error: ["e": 1])),
            ("attempt_count", .attemptCount(stepRunID: id)),
            ("latest_attempt", .latestAttempt(stepRunID: id)),
            ("list_attempts", .listAttempts(stepRunID: id)),
            ("purge_run", .purgeRun(runID: run)),
            ("transaction", .transaction([.completeAttempt(attemptID: id), .completeStep(stepRunID: id, output: input)])),
        ]
        var seeds: [(String, [UInt8])] = []
        func frame(_ name: String, _ call: Call, id: UInt64) {
            var buffer = ByteBuffer()
            WireCodec.encodeRequest(RequestFrame(id: id, timeoutMs: 5000, call: call), into: &buffer)
            seeds.append((name, Array(buffer.readableBytesView)))
        }
        frame("hello", .hello(Hello(clientName: "seed", token: "t0ken")), id: 1)
        frame("health", .health, id: 2)
        for (index, (name, request)) in requests.enumerated() {
            frame(name, .store(request), id: UInt64(10 + index))
        }
        var results = ByteBuffer()
        WireCodec.encodeResponse(ResponseFrame(id: 7, outcome: .failure(.transactionFailed(index: 2, cause: .staleStepRun(status: .completed)))), into: &results)
        seeds.append(("response_error", Array(results.readableBytesView)))
        // Edge cases.
        seeds.append(("empty_frame", [0, 0, 0, 0]))
        seeds.append(("oversized_length", [0x7F, 0xFF, 0xFF, 0xFF, 0x08, 0x01]))
        seeds.append(("truncated", Array(seeds[3].1.dropLast(5))))
        seeds.append(("two_frames", seeds[0].1 + seeds[1].1))
        seeds.append(("deep_json", Array(("{\"a\":" + String(repeating: "[", count: 300) + String(repeating: "]", count: 300) + "}").utf8)))
        return seeds
    }

    static func write(to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (name, bytes) in seeds() {
            try Data(bytes).write(to: URL(fileURLWithPath: directory).appendingPathComponent(name))
        }
    }
}
