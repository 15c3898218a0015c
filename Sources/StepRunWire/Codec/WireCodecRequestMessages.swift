import CStepRunProto
import Foundation
import StepRunCore

// Builders of the C message of each store operation's request. Shared by `Request.call` and
// `TransactionOperation.operation`, which carry the same messages.

extension EncodeArena {
    private func resumeTarget(_ target: ResumeTarget) -> UnsafeMutablePointer<Steprun__V1__ResumeTarget> {
        let message = self.message(steprun__v1__resume_target__init)
        switch target {
        case .step(let name):
            message.pointee.target_case = STEPRUN__V1__RESUME_TARGET__TARGET_STEP
            message.pointee.step = binary(name)
        case .complete:
            message.pointee.target_case = STEPRUN__V1__RESUME_TARGET__TARGET_COMPLETE_RUN
            message.pointee.complete_run = self.message(steprun__v1__complete_run__init)
        }
        return message
    }

    // MARK: Claiming and scheduling

    func beginStep(
        _ runID: UUID, _ step: String, _ input: JSONPayload, _ recovery: JSONPayload?
    ) -> UnsafeMutablePointer<Steprun__V1__BeginStepRequest> {
        let message = self.message(steprun__v1__begin_step_request__init)
        message.pointee.run_id = binary(runID.bytes)
        message.pointee.step = binary(step)
        message.pointee.input = binary(input.utf8)
        if let recovery {
            message.pointee._recovery_case = STEPRUN__V1__BEGIN_STEP_REQUEST___RECOVERY_RECOVERY
            message.pointee.recovery = binary(recovery.utf8)
        }
        return message
    }

    func scheduleStep(
        _ runID: UUID, _ step: String, _ input: JSONPayload, _ recovery: JSONPayload?
    ) -> UnsafeMutablePointer<Steprun__V1__ScheduleStepRequest> {
        let message = self.message(steprun__v1__schedule_step_request__init)
        message.pointee.run_id = binary(runID.bytes)
        message.pointee.step = binary(step)
        message.pointee.input = binary(input.utf8)
        if let recovery {
            message.pointee._recovery_case = STEPRUN__V1__SCHEDULE_STEP_REQUEST___RECOVERY_RECOVERY
            message.pointee.recovery = binary(recovery.utf8)
        }
        return message
    }

    func scheduleSteps(_ runID: UUID, _ steps: [ScheduledStep]) -> UnsafeMutablePointer<Steprun__V1__ScheduleStepsRequest> {
        let message = self.message(steprun__v1__schedule_steps_request__init)
        message.pointee.run_id = binary(runID.bytes)
        let entries = pointers(to: Steprun__V1__StepToSchedule.self, count: steps.count)
        for (index, step) in steps.enumerated() {
            let entry = self.message(steprun__v1__step_to_schedule__init)
            entry.pointee.step = binary(step.step)
            entry.pointee.input = binary(step.input.utf8)
            if let recovery = step.recovery {
                entry.pointee._recovery_case = STEPRUN__V1__STEP_TO_SCHEDULE___RECOVERY_RECOVERY
                entry.pointee.recovery = binary(recovery.utf8)
            }
            entries[index] = entry
        }
        message.pointee.n_steps = steps.count
        message.pointee.steps = entries
        return message
    }

    func deletePendingSteps(_ runID: UUID, _ steps: [String]) -> UnsafeMutablePointer<Steprun__V1__DeletePendingStepsRequest> {
        let message = self.message(steprun__v1__delete_pending_steps_request__init)
        message.pointee.run_id = binary(runID.bytes)
        message.pointee.n_steps = steps.count
        message.pointee.steps = texts(steps)
        return message
    }

    /// A repeated `bytes` field of UTF-8 names.
    func texts(_ names: [String]) -> UnsafeMutablePointer<ProtobufCBinaryData> {
        let values = binaries(count: names.count)
        for (index, name) in names.enumerated() {
            values[index] = binary(name)
        }
        return values
    }

    // MARK: Finishing a running step

    func completeStep(_ id: UUID, _ output: JSONPayload) -> UnsafeMutablePointer<Steprun__V1__CompleteStepRequest> {
        let message = self.message(steprun__v1__complete_step_request__init)
        message.pointee.step_run_id = binary(id.bytes)
        message.pointee.output = binary(output.utf8)
        return message
    }

    func completeManualStep(
        _ id: UUID, _ output: JSONPayload, _ manual: JSONPayload
    ) -> UnsafeMutablePointer<Steprun__V1__CompleteManualStepRequest> {
        let message = self.message(steprun__v1__complete_manual_step_request__init)
        message.pointee.step_run_id = binary(id.bytes)
        message.pointee.output = binary(output.utf8)
        message.pointee.manual = binary(manual.utf8)
        return message
    }

    func failStep(_ id: UUID, _ error: JSONPayload) -> UnsafeMutablePointer<Steprun__V1__FailStepRequest> {
        let message = self.message(steprun__v1__fail_step_request__init)
        message.pointee.step_run_id = binary(id.bytes)
        message.pointee.error = binary(error.utf8)
        return message
    }

    func persistPauseResume(
        _ id: UUID, _ output: JSONPayload, _ target: ResumeTarget
    ) -> UnsafeMutablePointer<Steprun__V1__PersistPauseResumeRequest> {
        let message = self.message(steprun__v1__persist_pause_resume_request__init)
        message.pointee.step_run_id = binary(id.bytes)
        message.pointee.output = binary(output.utf8)
        message.pointee.target = resumeTarget(target)
        return message
    }

    func persistApprovalResume(
        _ id: UUID, _ okTarget: ResumeTarget, _ errorTarget: ResumeTarget, _ outputKey: String?
    ) -> UnsafeMutablePointer<Steprun__V1__PersistApprovalResumeRequest> {
        let message = self.message(steprun__v1__persist_approval_resume_request__init)
        message.pointee.step_run_id = binary(id.bytes)
        message.pointee.ok_target = resumeTarget(okTarget)
        message.pointee.error_target = resumeTarget(errorTarget)
        if let outputKey {
            message.pointee._output_key_case = STEPRUN__V1__PERSIST_APPROVAL_RESUME_REQUEST___OUTPUT_KEY_OUTPUT_KEY
            message.pointee.output_key = binary(outputKey)
        }
        return message
    }

    func recordFailureRecovery(
        _ id: UUID, _ strategy: RecoveryStrategy, _ target: String
    ) -> UnsafeMutablePointer<Steprun__V1__RecordFailureRecoveryRequest> {
        let message = self.message(steprun__v1__record_failure_recovery_request__init)
        message.pointee.step_run_id = binary(id.bytes)
        message.pointee.strategy = strategy.wire
        message.pointee.target = binary(target)
        return message
    }

    func updateRecovery(_ id: UUID, _ recovery: JSONPayload) -> UnsafeMutablePointer<Steprun__V1__UpdateRecoveryRequest> {
        let message = self.message(steprun__v1__update_recovery_request__init)
        message.pointee.step_run_id = binary(id.bytes)
        message.pointee.recovery = binary(recovery.utf8)
        return message
    }

    // MARK: Reading a run

    func getStepRun(_ runID: UUID, _ step: String) -> UnsafeMutablePointer<Steprun__V1__GetStepRunRequest> {
        let message = self.message(steprun__v1__get_step_run_request__init)
        message.pointee.run_id = binary(runID.bytes)
        message.pointee.step = binary(step)
        return message
    }

    /// The read requests that carry only a run id share this shape.
    func runOnly<Message>(
        _ runID: UUID, _ initialize: (UnsafeMutablePointer<Message>) -> Void,
        _ field: WritableKeyPath<Message, ProtobufCBinaryData>
    ) -> UnsafeMutablePointer<Message> {
        let message = self.message(initialize)
        message.pointee[keyPath: field] = binary(runID.bytes)
        return message
    }

    // MARK: Attempt history

    func failAttempt(_ id: UUID, _ error: JSONPayload) -> UnsafeMutablePointer<Steprun__V1__FailAttemptRequest> {
        let message = self.message(steprun__v1__fail_attempt_request__init)
        message.pointee.attempt_id = binary(id.bytes)
        message.pointee.error = binary(error.utf8)
        return message
    }

    func recordAttempt(
        _ id: UUID, _ number: Int, _ status: AttemptStatus, _ error: JSONPayload?
    ) -> UnsafeMutablePointer<Steprun__V1__RecordAttemptRequest> {
        let message = self.message(steprun__v1__record_attempt_request__init)
        message.pointee.step_run_id = binary(id.bytes)
        message.pointee.attempt_number = Int64(number)
        message.pointee.status = status.wire
        if let error {
            message.pointee._error_case = STEPRUN__V1__RECORD_ATTEMPT_REQUEST___ERROR_ERROR
            message.pointee.error = binary(error.utf8)
        }
        return message
    }
}
