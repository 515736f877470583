extension OpenAPIDocument {
    /// `components`: security, shared parameters, error answers and every schema.
    static let components = #"""
      "components": {
        "securitySchemes": {
          "bearer": {"type": "http", "scheme": "bearer", "description": "A token of the gateway's --token-file."}
        },
        "parameters": {
          "IdempotencyKey": {
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "The same key from the same token gives the same task id: a retried POST is the same task.",
            "schema": {"type": "string", "pattern": "^[!-~]{1,200}$"}
          }
        },
        "headers": {
          "RetryAfter": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer", "minimum": 1}},
          "WWWAuthenticate": {"description": "The Bearer challenge.", "schema": {"type": "string"}},
          "Allow": {"description": "The methods the path serves.", "schema": {"type": "string"}}
        },
        "responses": {
          "BadRequest": {"description": "Malformed JSON, an unknown field or a bad value; the message names the field.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "Unauthorized": {"description": "No bearer token, or one that is not the gateway's.", "headers": {"WWW-Authenticate": {"$ref": "#/components/headers/WWWAuthenticate"}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "Forbidden": {"description": "The token lacks the scope.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "NotFound": {"description": "The broker holds no such task.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "MethodNotAllowed": {"description": "The path does not serve this method.", "headers": {"Allow": {"$ref": "#/components/headers/Allow"}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "Conflict": {"description": "The task runs or has finished (cancel), or the idempotency key's id is another task's.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "TooLarge": {"description": "The body is over --max-body-bytes.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "Refused": {"description": "The broker refused the task (no consumer serves the name, args too large, ...) or the query (a cursor it did not give), or callback_url was given to a gateway that delivers no webhooks.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "RateLimited": {"description": "The token is past its rate.", "headers": {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "Unavailable": {"description": "The broker cannot be reached, its queue is full, or the gateway is stopping.", "headers": {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
          "Timeout": {"description": "The broker did not answer in time.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        },
        "schemas": {
          "Error": {
            "type": "object", "additionalProperties": false, "required": ["error"],
            "properties": {"error": {"$ref": "#/components/schemas/ErrorDetail"}}
          },
          "ErrorDetail": {
            "type": "object", "additionalProperties": false, "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}}
          },
          "Health": {
            "type": "object", "additionalProperties": false, "required": ["status"],
            "properties": {"status": {"const": "ok"}}
          },
          "Name": {"type": "string", "pattern": "^[!-~]{1,255}$"},
          "TaskID": {"type": "string", "pattern": "^[!-~]{1,255}$"},
          "TaskRequest": {
            "type": "object", "additionalProperties": false, "required": ["name"],
            "properties": {
              "name": {"$ref": "#/components/schemas/Name"},
              "args": {"description": "The task's arguments: any JSON, passed to the handler as it is (default {})."},
              "options": {"$ref": "#/components/schemas/TaskOptions"}
            }
          },
          "TaskOptions": {
            "type": "object", "additionalProperties": false,
            "properties": {
              "timeout_ms": {"type": "integer", "minimum": 1, "maximum": 4000000000},
              "priority": {"type": "integer", "minimum": -2147483648, "maximum": 2147483647},
              "attempts": {"type": "integer", "minimum": 1, "maximum": 1000},
              "retry_backoff_ms": {"type": "integer", "minimum": 0, "maximum": 86400000},
              "require_consumer": {"type": "boolean", "description": "Refuse the task when no consumer serves its name (default true)."},
              "traceparent": {"type": "string", "pattern": "^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$"},
              "tracestate": {"type": "string", "pattern": "^[\\t -~]{1,512}$", "description": "Only with a traceparent."},
              "not_before": {"type": "integer", "minimum": 0, "maximum": 253402300799999, "description": "Run no earlier than this: ms since the Unix epoch (UTC). A time past is ready at once; the broker refuses one more than 366 days ahead (422). The timeout counts from then. Not with delay_seconds."},
              "delay_seconds": {"type": "number", "minimum": 0, "maximum": 31622400, "description": "Run no earlier than this many seconds from now. Not with not_before."},
              "unique_key": {"type": "string", "pattern": "^[!-~]{1,255}$", "description": "While a task of this name with this key is held (not finished, or finished less than unique_ttl_seconds ago), the submit makes no task: the answer carries that task's id."},
              "unique_ttl_seconds": {"type": "number", "minimum": 0, "maximum": 4000000, "description": "How long a finished task keeps its unique_key (default 0). Only with unique_key."}
            },
            "dependentRequired": {"tracestate": ["traceparent"], "unique_ttl_seconds": ["unique_key"]},
            "not": {"required": ["not_before", "delay_seconds"]}
          },
          "Accepted": {
            "type": "object", "additionalProperties": false, "required": ["id", "status"],
            "properties": {"id": {"$ref": "#/components/schemas/TaskID"}, "status": {"const": "accepted"}}
          },
          "BatchRequest": {
            "type": "object", "additionalProperties": false, "required": ["tasks"],
            "properties": {"tasks": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"$ref": "#/components/schemas/TaskRequest"}}}
          },
          "BatchResponse": {
            "type": "object", "additionalProperties": false, "required": ["accepted", "results"],
            "properties": {
              "accepted": {"type": "integer", "minimum": 0},
              "results": {"type": "array", "items": {"oneOf": [{"$ref": "#/components/schemas/BatchAccepted"}, {"$ref": "#/components/schemas/BatchRejected"}]}}
            }
          },
          "BatchAccepted": {
            "type": "object", "additionalProperties": false, "required": ["index", "id", "status"],
            "properties": {"index": {"type": "integer", "minimum": 0}, "id": {"$ref": "#/components/schemas/TaskID"}, "status": {"const": "accepted"}}
          },
          "BatchRejected": {
            "type": "object", "additionalProperties": false, "required": ["index", "status", "error"],
            "properties": {"index": {"type": "integer", "minimum": 0}, "status": {"const": "rejected"}, "error": {"$ref": "#/components/schemas/ErrorDetail"}}
          },
          "Task": {
            "type": "object", "additionalProperties": false, "required": ["id", "state"],
            "properties": {
              "id": {"$ref": "#/components/schemas/TaskID"},
              "state": {"type": "string", "enum": ["queued", "scheduled", "reserved", "running", "done", "other"]},
              "due_at": {"type": "integer", "minimum": 0, "description": "A scheduled task's due time: ms since the Unix epoch."},
              "status": {"type": "string", "enum": ["ok", "error", "cancelled", "timeout", "rejected", "unrecognized"]},
              "result": {"description": "The handler's result (status ok): any JSON."},
              "error": {
                "type": "object", "additionalProperties": false, "required": ["kind", "message"],
                "properties": {"kind": {"type": "string"}, "message": {"type": "string"}}
              },
              "worker": {
                "type": "object", "additionalProperties": false,
                "properties": {"host": {"type": "string"}, "pid": {"type": "integer"}, "thread": {"type": "integer"}, "process": {"type": "integer"}}
              },
              "attempts": {"type": "integer", "minimum": 0},
              "elapsed_ms": {"type": "number", "minimum": 0}
            }
          },
          "Cancelled": {
            "type": "object", "additionalProperties": false, "required": ["id", "outcome"],
            "properties": {"id": {"$ref": "#/components/schemas/TaskID"}, "outcome": {"const": "cancelled"}}
          },
          "TaskPage": {
            "type": "object", "additionalProperties": false, "required": ["examined", "next_cursor", "tasks"],
            "properties": {
              "examined": {"type": "integer", "minimum": 0},
              "next_cursor": {"type": ["string", "null"]},
              "tasks": {"type": "array", "items": {"$ref": "#/components/schemas/TaskSummary"}}
            }
          },
          "TaskSummary": {
            "type": "object", "additionalProperties": false, "required": ["id", "name", "state", "attempts"],
            "properties": {
              "id": {"type": "string"}, "name": {"type": "string"},
              "state": {"type": "string"}, "attempts": {"type": "integer", "minimum": 0},
              "accepted_at": {"type": "integer"}, "updated_at": {"type": "integer"}, "due_at": {"type": "integer", "description": "A scheduled task: when it comes due (ms since the epoch)."},
              "producer": {"type": "string"}, "consumer": {"type": "string"},
              "status": {"type": "string"}, "error": {"type": "string"}, "kind": {"type": "string"}
            }
          },
          "Stats": {
            "type": "object", "additionalProperties": false, "required": ["broker"],
            "properties": {"broker": {"type": "object", "description": "The broker's STATS reply as it sent it (docs/PROTOCOL.md); it gains fields with new broker versions, so it is left open."}}
          }
        }
      }
    """#
}
