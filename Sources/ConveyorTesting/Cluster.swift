public import ConveyorProcess

/// A real Conveyor deployment for a test: one broker process and any number of consumer
/// processes, on ports the OS picks. It is ``ConveyorProcess/LocalCluster`` (the launcher the
/// `conveyor demo` and `conveyor bench` commands use too), under the test kit's name. Use
/// ``withCluster(_:body:)`` so it is torn down even when the test fails.
///
/// ```swift
/// try await withCluster(.init(consumers: 2, threads: 4)) { cluster in
///     let producer = try cluster.makeProducer()
///     let handle = try await producer.submit("echo", json: #"{"n": 1}"#)
///     #expect(await handle.result().status == .ok)
/// }
/// ```
///
/// The producers it makes run (their `Service.run()`) in tasks the cluster owns, from
/// `makeProducer(configure:)` until `shutDownProducers()` (which ``withCluster(_:body:)``
/// awaits) or `tearDown()`.
public typealias Cluster = LocalCluster

public typealias ClusterError = LocalClusterError

/// Runs `body` against a fresh cluster and always tears it down, awaiting the producers' loops
/// and the end of every process.
public func withCluster<T>(_ options: Cluster.Options = .init(), body: (Cluster) async throws -> T) async throws -> T {
    try await withLocalCluster(options, body: body)
}
