// What the public API of this module uses from the protocol module (TaskOptions, RawJSON,
// TaskStatus, ErrorKind, TaskDefinition, ...): `import ConveyorConsumer` alone is enough.
@_exported public import ConveyorProtocol
