/// The gateway's OpenAPI 3.1 document, served at `GET /openapi.json`. Written by hand and kept in
/// the binary as text (not a SwiftPM resource, which is lost once the binary is installed
/// elsewhere); openapi-spec-validator and schemathesis check it against the live gateway
/// (scripts/check-openapi.sh). Paths here, schemas in OpenAPIDocument+Components.swift.
enum OpenAPIDocument {
    static let bytes: [UInt8] = Array(text.utf8)

    static let text = #"""
    {
      "openapi": "3.1.0",
      "info": {
        "title": "Conveyor gateway",
        "version": "1",
        "description": "HTTP and JSON in front of a Conveyor broker: submit tasks, follow them, cancel them, list them. See docs/GATEWAY.md."
      },
      "security": [{"bearer": []}],
      "paths": {
        "/healthz": {
          "get": {
            "operationId": "health",
            "summary": "The gateway is up.",
            "security": [],
            "responses": {
              "200": {"description": "Up.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}},
              "405": {"$ref": "#/components/responses/MethodNotAllowed"}
            }
          }
        },
        "/openapi.json": {
          "get": {
            "operationId": "openapi",
            "summary": "This document.",
            "security": [],
            "responses": {
              "200": {"description": "The OpenAPI document.", "content": {"application/json": {"schema": {"type": "object"}}}},
              "405": {"$ref": "#/components/responses/MethodNotAllowed"}
            }
          }
        },
        "/v1/tasks": {
          "post": {
            "operationId": "submitTask",
            "summary": "Submit one task (scope submit).",
            "parameters": [{"$ref": "#/components/parameters/IdempotencyKey"}],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TaskRequest"}}}},
            "responses": {
              "202": {"description": "The broker accepted the task.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}}},
              "400": {"$ref": "#/components/responses/BadRequest"},
              "401": {"$ref": "#/components/responses/Unauthorized"},
              "403": {"$ref": "#/components/responses/Forbidden"},
              "405": {"$ref": "#/components/responses/MethodNotAllowed"},
              "409": {"$ref": "#/components/responses/Conflict"},
              "413": {"$ref": "#/components/responses/TooLarge"},
              "422": {"$ref": "#/components/responses/Refused"},
              "429": {"$ref": "#/components/responses/RateLimited"},
              "503": {"$ref": "#/components/responses/Unavailable"},
              "504": {"$ref": "#/components/responses/Timeout"}
            }
          },
          "get": {
            "operationId": "listTasks",
            "summary": "One page of the broker's tasks (scope read).",
            "parameters": [
              {"name": "state", "in": "query", "schema": {"type": "string", "enum": ["queued", "scheduled", "reserved", "running", "succeeded", "failed", "cancelled", "dead"]}},
              {"name": "name", "in": "query", "schema": {"$ref": "#/components/schemas/Name"}},
              {"name": "since_ms", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 9223372036854775807}},
              {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
              {"name": "cursor", "in": "query", "schema": {"type": "string", "minLength": 1, "maxLength": 1024}}
            ],
            "responses": {
              "200": {"description": "A page; follow next_cursor until it is null.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TaskPage"}}}},
              "400": {"$ref": "#/components/responses/BadRequest"},
              "401": {"$ref": "#/components/responses/Unauthorized"},
              "403": {"$ref": "#/components/responses/Forbidden"},
              "405": {"$ref": "#/components/responses/MethodNotAllowed"},
              "422": {"$ref": "#/components/responses/Refused"},
              "429": {"$ref": "#/components/responses/RateLimited"},
              "503": {"$ref": "#/components/responses/Unavailable"},
              "504": {"$ref": "#/components/responses/Timeout"}
            }
          }
        },
        "/v1/tasks/batch": {
          "post": {
            "operationId": "submitBatch",
            "summary": "Submit many tasks (scope submit); each gets its own result.",
            "parameters": [{"$ref": "#/components/parameters/IdempotencyKey"}],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BatchRequest"}}}},
            "responses": {
              "200": {"description": "One result per task, in order.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BatchResponse"}}}},
              "400": {"$ref": "#/components/responses/BadRequest"},
              "401": {"$ref": "#/components/responses/Unauthorized"},
              "403": {"$ref": "#/components/responses/Forbidden"},
              "405": {"$ref": "#/components/responses/MethodNotAllowed"},
              "413": {"$ref": "#/components/responses/TooLarge"},
              "429": {"$ref": "#/components/responses/RateLimited"},
              "503": {"$ref": "#/components/responses/Unavailable"},
              "504": {"$ref": "#/components/responses/Timeout"}
            }
          }
        },
        "/v1/tasks/{id}": {
          "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"$ref": "#/components/schemas/TaskID"}}],
          "get": {
            "operationId": "getTask",
            "summary": "Where a task stands, and its result once done (scope read).",
            "parameters": [{"name": "wait", "in": "query", "description": "Seconds to wait for the task to finish (long poll).", "schema": {"type": "number", "minimum": 0, "maximum": 60}}],
            "responses": {
              "200": {"description": "The task.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Task"}}}},
              "400": {"$ref": "#/components/responses/BadRequest"},
              "401": {"$ref": "#/components/responses/Unauthorized"},
              "403": {"$ref": "#/components/responses/Forbidden"},
              "404": {"$ref": "#/components/responses/NotFound"},
              "405": {"$ref": "#/components/responses/MethodNotAllowed"},
              "429": {"$ref": "#/components/responses/RateLimited"},
              "503": {"$ref": "#/components/responses/Unavailable"},
              "504": {"$ref": "#/components/responses/Timeout"}
            }
          },
          "delete": {
            "operationId": "cancelTask",
            "summary": "Cancel a task that waits (scope submit).",
            "responses": {
              "200": {"description": "Cancelled.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Cancelled"}}}},
              "400": {"$ref": "#/components/responses/BadRequest"},
              "401": {"$ref": "#/components/responses/Unauthorized"},
              "403": {"$ref": "#/components/responses/Forbidden"},
              "404": {"$ref": "#/components/responses/NotFound"},
              "405": {"$ref": "#/components/responses/MethodNotAllowed"},
              "409": {"$ref": "#/components/responses/Conflict"},
              "429": {"$ref": "#/components/responses/RateLimited"},
              "503": {"$ref": "#/components/responses/Unavailable"},
              "504": {"$ref": "#/components/responses/Timeout"}
            }
          }
        },
        "/v1/stats": {
          "get": {
            "operationId": "stats",
            "summary": "The broker's statistics (scope read).",
            "responses": {
              "200": {"description": "The broker's STATS reply.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Stats"}}}},
              "401": {"$ref": "#/components/responses/Unauthorized"},
              "403": {"$ref": "#/components/responses/Forbidden"},
              "405": {"$ref": "#/components/responses/MethodNotAllowed"},
              "429": {"$ref": "#/components/responses/RateLimited"},
              "503": {"$ref": "#/components/responses/Unavailable"},
              "504": {"$ref": "#/components/responses/Timeout"}
            }
          }
        }
      },
    """# + components + "\n}\n"
}
