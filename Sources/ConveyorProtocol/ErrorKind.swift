/// Why a task did not succeed, carried as `"kind"` in the JSON body of a non-`ok` result.
public enum ErrorKind: String, Sendable, Codable {
    /// The handler threw; `error` holds its text.
    case handlerError = "handler_error"
    /// No handler is registered under the task's name on the consumer that got it.
    case unknownTask = "unknown_task"
    /// The args are not valid JSON.
    case malformedJSON = "malformed_json"
    /// The args are JSON but do not decode to the handler's argument type.
    case badArgs = "bad_args"
    /// The task passed its time limit, queued or running.
    case timeout
    /// The task was cancelled while queued.
    case cancelled
    /// The broker refused the task (queue full, bad id, name or options, shutting down).
    case rejected
    /// Every allowed attempt failed or was lost.
    case attemptsExhausted = "attempts_exhausted"
    /// The consumer was shutting down or lost.
    case consumerLost = "consumer_lost"
    /// The consumer could not read the task's dispatch meta, or it held a critical field the consumer
    /// does not support (version 3, §5.2).
    case unsupported
}
