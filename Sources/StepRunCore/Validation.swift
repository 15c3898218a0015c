/// Input checks shared by every side, so bad input is refused before any SQL runs.
extension StoreRequest {
    /// Throws `StepRunError.invalidArgument` naming the first offending field.
    public func validate(limits: StoreLimits) throws(StepRunError) {
        try validate(limits: limits, prefix: "")
    }

    private func validate(limits: StoreLimits, prefix p: String) throws(StepRunError) {
        func payload(_ value: JSONPayload?, _ field: String) throws(StepRunError) {
            guard let value else { return }
            guard value.byteCount <= limits.maxPayloadBytes else {
                throw .invalidArgument(
                    field: p + field,
                    message: "\(p + field) is \(value.byteCount) bytes, over the payload limit of \(limits.maxPayloadBytes) bytes")
            }
            // What is stored (and read back) is Postgres's rendering, which can be larger; bounding
            // it is what lets every stored row fit one response (`StoreLimits.maxStepRunBytes`).
            guard value.storedByteCount <= limits.maxPayloadBytes else {
                throw .invalidArgument(
                    field: p + field,
                    message: "\(p + field) would be \(value.storedByteCount) bytes once stored (Postgres writes jsonb "
                        + "with \", \" and \": \" separators and numbers in full), over the payload limit of \(limits.maxPayloadBytes) bytes")
            }
        }
        func step(_ name: String, _ field: String) throws(StepRunError) {
            try Self.validateStepName(name, field: p + field)
        }
        func target(_ target: ResumeTarget, _ field: String) throws(StepRunError) {
            guard case .step(let name) = target else { return }
            try step(name, field)
            guard name != ResumeTarget.completeMarker else {
                throw .invalidArgument(
                    field: p + field,
                    message: "\(p + field) may not be the reserved name \(ResumeTarget.completeMarker); use .complete")
            }
        }
        func count(_ count: Int, _ field: String) throws(StepRunError) {
            guard count <= limits.maxStepsPerCall else {
                throw .invalidArgument(field: p + field, message: "\(p + field) names \(count) steps, over the limit of \(limits.maxStepsPerCall)")
            }
        }

        switch self {
        case .beginStep(_, let name, let input, let recovery), .scheduleStep(_, let name, let input, let recovery):
            try step(name, "step")
            try payload(input, "input")
            try payload(recovery, "recovery")
        case .scheduleSteps(_, let steps):
            try count(steps.count, "steps")
            var seen = Set<String>()
            for (index, entry) in steps.enumerated() {
                try step(entry.step, "steps[\(index)].step")
                try payload(entry.input, "steps[\(index)].input")
                try payload(entry.recovery, "steps[\(index)].recovery")
                guard seen.insert(entry.step).inserted else {
                    throw .invalidArgument(field: p + "steps[\(index)].step", message: "step \"\(entry.step)\" is named twice in one schedule_steps call")
                }
            }
        case .deletePendingSteps(_, let steps):
            try count(steps.count, "steps")
            for (index, name) in steps.enumerated() {
                try step(name, "steps[\(index)]")
            }
        case .completeStep(_, let output):
            try payload(output, "output")
        case .completeManualStep(_, let output, let manual):
            try payload(output, "output")
            try payload(manual, "manual")
        case .failStep(_, let error), .failAttempt(_, let error):
            try payload(error, "error")
        case .persistPauseResume(_, let output, let resumeTarget):
            try payload(output, "output")
            try target(resumeTarget, "target")
        case .persistApprovalResume(_, let okTarget, let errorTarget, let outputKey):
            try target(okTarget, "ok_target")
            try target(errorTarget, "error_target")
            if let outputKey {
                try step(outputKey, "output_key")
            }
        case .recordFailureRecovery(_, _, let name):
            try step(name, "target")
        case .updateRecovery(_, let recovery):
            try payload(recovery, "recovery")
        case .getStepRun(_, let name):
            try step(name, "step")
        case .recordAttempt(_, let number, _, let error):
            guard number >= 1 && number <= Int(Int32.max) else {
                throw .invalidArgument(field: p + "attempt_number", message: "\(p)attempt_number must be between 1 and \(Int32.max), got \(number)")
            }
            try payload(error, "error")
        case .transaction(let operations):
            guard !operations.isEmpty else {
                throw .invalidArgument(field: p + "operations", message: "a transaction needs at least one operation")
            }
            guard operations.count <= limits.maxTransactionOperations else {
                throw .invalidArgument(
                    field: p + "operations",
                    message: "a transaction may hold at most \(limits.maxTransactionOperations) operations, got \(operations.count)")
            }
            for (index, operation) in operations.enumerated() {
                let field = p + "operations[\(index)]"
                guard operation.isTransactional else {
                    throw .transactionFailed(
                        index: index,
                        cause: .invalidArgument(field: field, message: "\(operation.operationName) cannot run inside a transaction"))
                }
                do {
                    try operation.validate(limits: limits, prefix: field + ".")
                } catch {
                    throw .transactionFailed(index: index, cause: error)
                }
            }
        case .completedSteps(let id, let page), .completedOutputs(let id, let page),
            .completedStepRunsForCompensation(let id, let page), .stepStatuses(let id, let page), .listAttempts(let id, let page):
            try Self.validatePageToken(page.after, of: self, scope: id)
        case .beginAttempt, .completeAttempt, .attemptCount, .latestAttempt, .purgeRun:
            break
        }
    }

    /// A step name is 1–255 bytes of UTF-8 with no NUL.
    public static func validateStepName(_ name: String, field: String) throws(StepRunError) {
        let count = name.utf8.count
        guard count >= 1 else {
            throw .invalidArgument(field: field, message: "\(field) must not be empty")
        }
        guard count <= StoreLimits.maxStepNameBytes else {
            throw .invalidArgument(field: field, message: "\(field) is \(count) bytes, over the limit of \(StoreLimits.maxStepNameBytes)")
        }
        guard !name.utf8.contains(0) else {
            throw .invalidArgument(field: field, message: "\(field) must not contain NUL")
        }
    }
}
