import Logging
import StepRunCore

/// What a caller is told when its result is too large for one frame, and what is logged.
///
/// Validation makes this impossible for a write: every row the store accepts fits a frame
/// (`StoreLimits.maxStepRunBytes`, checked at start-up) and a `transaction` whose results would
/// not fit is refused before COMMIT. If it happens anyway it is a defect, and the caller must not
/// be told RESOURCE_EXHAUSTED — a retryable code — about a write that may have been applied: it
/// gets INTERNAL saying so, and the log says it at error level. A read that is too large changed
/// nothing, but retrying it cannot help either (the row was written by daemons with a larger frame
/// limit): it gets FAILED_PRECONDITION `result_too_large`, never the retryable RESOURCE_EXHAUSTED
/// (SPEC.md keeps that for load the caller can back off from).
struct OversizedResult {
    var operation: String?
    var writes: Bool
    var limit: Int

    func error(size: Int) -> StepRunError {
        if writes {
            return .internal(
                "the result of \(operation ?? "the call") encodes to \(size) bytes, over the frame limit of \(limit) bytes, "
                    + "and cannot be sent; the write may have been applied — read it back before retrying")
        }
        return .resultTooLarge(
            "result_too_large: the result of \(operation ?? "the call") encodes to \(size) bytes, over this daemon's frame limit of "
                + "\(limit) bytes, and cannot be sent; raise max-frame-bytes to match the daemons that wrote the row")
    }

    func log(size: Int, to logger: Logger) {
        let metadata: Logger.Metadata = ["operation": "\(operation ?? "-")", "size": "\(size)", "limit": "\(limit)"]
        if writes {
            logger.error("a write's result was too large to send: a defect, as every stored row should fit a frame", metadata: metadata)
        } else {
            logger.notice("a result was too large to send", metadata: metadata)
        }
    }
}
