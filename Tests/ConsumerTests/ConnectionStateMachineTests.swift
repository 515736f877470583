@testable import ConveyorConsumer
import Testing

/// The consumer's connection state machine on its own: no sockets, no threads.
@Suite("Consumer connection state machine")
struct ConnectionStateMachineTests {
    typealias Machine = ConnectionStateMachine
    typealias Effect = ConnectionStateMachine.Effect

    static let drainTimeout: UInt64 = 1_000

    func machine(capacity: Int = 4) -> Machine { Machine(capacity: capacity, drainTimeout: Self.drainTimeout) }

    /// A machine that has connected and heard from its broker.
    func ready(capacity: Int = 4, holding held: Int = 0) throws -> Machine {
        var machine = machine(capacity: capacity)
        _ = try machine.start()
        try machine.heard()
        try machine.tasksArrived(held)
        return machine
    }

    /// Expects `transition` to be refused and to leave `machine` exactly as it was.
    func expectRefused(_ machine: Machine, _ name: String, sourceLocation: SourceLocation = #_sourceLocation,
                       _ transition: (inout Machine) throws -> Void) {
        var copy = machine
        #expect(throws: Machine.IllegalTransition.self, "\(name) in \(machine.state)", sourceLocation: sourceLocation) {
            try transition(&copy)
        }
        #expect(copy.state == machine.state, "\(name) changed the state", sourceLocation: sourceLocation)
        #expect(copy.held == machine.held && copy.capacity == machine.capacity, sourceLocation: sourceLocation)
    }

    @Test("start: idle → registering, connecting and announcing the capacity")
    func start() throws {
        var machine = machine(capacity: 6)
        #expect(machine.state == .idle)
        #expect(!machine.acceptsWork)
        #expect(try machine.start() == [.connect, .announce(capacity: 6, update: false)])
        #expect(machine.state == .registering)
        #expect(machine.acceptsWork)
        expectRefused(machine, "a second start") { _ = try $0.start() }
    }

    @Test("heard: registering → ready; ready and draining stay")
    func heard() throws {
        var machine = machine()
        _ = try machine.start()
        try machine.heard()
        #expect(machine.state == .ready)
        try machine.heard()
        #expect(machine.state == .ready)
        _ = try machine.beginDrain(now: 0)
        try machine.heard()
        #expect(machine.state == .draining(deadline: Self.drainTimeout))
    }

    @Test("tasks held count up with DISPATCH and down with results; more results than held is refused")
    func credit() throws {
        var machine = try ready(holding: 3)
        #expect(machine.held == 3)
        try machine.resultsSent(2)
        #expect(machine.held == 1)
        expectRefused(machine, "two results for one task held") { try $0.resultsSent(2) }
        try machine.resultsSent(1)
        #expect(machine.held == 0)
    }

    @Test("announce: a new capacity while registering or ready, handing back the unstarted surplus")
    func announce() throws {
        var machine = try ready(capacity: 10, holding: 8)
        #expect(try machine.announce(capacity: 20) == [.announce(capacity: 20, update: true)])
        #expect(machine.capacity == 20)
        #expect(try machine.announce(capacity: 5) == [.announce(capacity: 5, update: true), .handBackUnstarted(atMost: 3)])
        #expect(machine.state == .ready)
        var registering = self.machine()
        _ = try registering.start()
        #expect(try registering.announce(capacity: 2) == [.announce(capacity: 2, update: true)])
        #expect(registering.state == .registering)
    }

    @Test("beginDrain: registering or ready → draining, announcing 0 and handing back what has not started")
    func beginDrain() throws {
        var machine = try ready(capacity: 4, holding: 2)
        #expect(try machine.beginDrain(now: 500) == [.announce(capacity: 0, update: false), .handBackUnstarted(atMost: nil)])
        #expect(machine.state == .draining(deadline: 500 + Self.drainTimeout))
        #expect(machine.capacity == 0)
        #expect(!machine.acceptsWork)
        #expect(machine.isDraining)
        // Still connected: late DISPATCHes are counted (and handed back) while draining.
        try machine.tasksArrived(1)
        #expect(machine.held == 3)
        var registering = self.machine()
        _ = try registering.start()
        _ = try registering.beginDrain(now: 0)
        #expect(registering.isDraining)
    }

    @Test("finishDrain: stays while tasks run before the deadline; drained when nothing is held; timed out after the deadline")
    func finishDrain() throws {
        var machine = try ready(holding: 2)
        _ = try machine.beginDrain(now: 0)
        #expect(try machine.finishDrain(now: Self.drainTimeout) == nil)
        #expect(machine.isDraining)
        try machine.resultsSent(2)
        #expect(try machine.finishDrain(now: 10) == [.flushResults, .disconnect])
        #expect(machine.state == .stopped(.drained))

        var late = try ready(holding: 2)
        _ = try late.beginDrain(now: 0)
        try late.resultsSent(1)
        #expect(try late.finishDrain(now: Self.drainTimeout + 1) == [.flushResults, .disconnect])
        #expect(late.state == .stopped(.drainTimedOut(abandoned: 1)))
        // The last results still go out after the stop.
        try late.resultsSent(1)
        #expect(late.held == 0)
    }

    @Test("reconnect, written once: DISCONNECT drops unstarted work, silence does not; connected announces again")
    func reconnect() throws {
        var machine = try ready(capacity: 4, holding: 1)
        #expect(try machine.reconnect(brokerRequeued: true) == [.handBackUnstarted(atMost: nil), .connect])
        #expect(machine.state == .reconnecting(drainDeadline: nil))
        #expect(!machine.acceptsWork)
        #expect(try machine.connected() == [.announce(capacity: 4, update: false)])
        #expect(machine.state == .registering)
        #expect(machine.held == 1, "running tasks' results still come back on the new connection")

        #expect(try machine.reconnect(brokerRequeued: false) == [.connect])
        _ = try machine.connected()
        #expect(machine.state == .registering)
    }

    @Test("a drain carries over a reconnect: the new connection announces 0 and the deadline stays")
    func reconnectWhileDraining() throws {
        var machine = try ready(holding: 1)
        _ = try machine.beginDrain(now: 100)
        #expect(try machine.reconnect(brokerRequeued: false) == [.connect])
        #expect(machine.state == .reconnecting(drainDeadline: 100 + Self.drainTimeout))
        #expect(machine.isDraining)
        #expect(try machine.connected() == [.announce(capacity: 0, update: false)])
        #expect(machine.state == .draining(deadline: 100 + Self.drainTimeout))
    }

    @Test("fail: a stuck handler hands back, flushes and disconnects; a protocol mismatch only hands back")
    func fail() throws {
        var stuck = try ready(holding: 2)
        #expect(try stuck.fail(.handlerStuck(taskID: "t", name: "sleep")) == [.handBackUnstarted(atMost: nil), .flushResults, .disconnect])
        #expect(stuck.state == .stopped(.handlerStuck(taskID: "t", name: "sleep")))

        var mismatch = machine()
        _ = try mismatch.start()
        #expect(try mismatch.fail(.protocolMismatch("CVY1")) == [.handBackUnstarted(atMost: nil)])
        #expect(mismatch.state == .stopped(.protocolMismatch("CVY1")))

        var draining = try ready()
        _ = try draining.beginDrain(now: 0)
        _ = try draining.fail(.handlerStuck(taskID: "u", name: "x"))
        #expect(draining.state == .stopped(.handlerStuck(taskID: "u", name: "x")))

        let ready = try ready()
        expectRefused(ready, "fail with a drain's reason") { _ = try $0.fail(.drained) }
        expectRefused(ready, "fail with a drain's timeout") { _ = try $0.fail(.drainTimedOut(abandoned: 1)) }
    }

    @Test("illegal transitions are refused in every state and change nothing")
    func illegalTransitions() throws {
        let idle = machine()
        expectRefused(idle, "heard") { try $0.heard() }
        expectRefused(idle, "tasksArrived") { try $0.tasksArrived(1) }
        expectRefused(idle, "resultsSent") { try $0.resultsSent(0) }
        expectRefused(idle, "announce") { _ = try $0.announce(capacity: 1) }
        expectRefused(idle, "beginDrain") { _ = try $0.beginDrain(now: 0) }
        expectRefused(idle, "finishDrain") { _ = try $0.finishDrain(now: 0) }
        expectRefused(idle, "reconnect") { _ = try $0.reconnect(brokerRequeued: false) }
        expectRefused(idle, "connected") { _ = try $0.connected() }
        expectRefused(idle, "fail") { _ = try $0.fail(.protocolMismatch("X")) }

        let ready = try ready()
        expectRefused(ready, "start") { _ = try $0.start() }
        expectRefused(ready, "finishDrain") { _ = try $0.finishDrain(now: 0) }
        expectRefused(ready, "connected") { _ = try $0.connected() }

        var draining = try self.ready()
        _ = try draining.beginDrain(now: 0)
        expectRefused(draining, "a second beginDrain") { _ = try $0.beginDrain(now: 1) }
        expectRefused(draining, "announce") { _ = try $0.announce(capacity: 8) }
        expectRefused(draining, "start") { _ = try $0.start() }
        expectRefused(draining, "connected") { _ = try $0.connected() }

        var reconnecting = try self.ready()
        _ = try reconnecting.reconnect(brokerRequeued: false)
        expectRefused(reconnecting, "heard") { try $0.heard() }
        expectRefused(reconnecting, "tasksArrived") { try $0.tasksArrived(1) }
        expectRefused(reconnecting, "announce") { _ = try $0.announce(capacity: 1) }
        expectRefused(reconnecting, "beginDrain") { _ = try $0.beginDrain(now: 0) }
        expectRefused(reconnecting, "a second reconnect") { _ = try $0.reconnect(brokerRequeued: true) }
        expectRefused(reconnecting, "fail") { _ = try $0.fail(.handlerStuck(taskID: "t", name: "n")) }

        var stopped = try self.ready()
        _ = try stopped.beginDrain(now: 0)
        _ = try stopped.finishDrain(now: 0)
        #expect(stopped.state == .stopped(.drained))
        expectRefused(stopped, "start") { _ = try $0.start() }
        expectRefused(stopped, "heard") { try $0.heard() }
        expectRefused(stopped, "tasksArrived") { try $0.tasksArrived(1) }
        expectRefused(stopped, "announce") { _ = try $0.announce(capacity: 1) }
        expectRefused(stopped, "beginDrain") { _ = try $0.beginDrain(now: 0) }
        expectRefused(stopped, "finishDrain") { _ = try $0.finishDrain(now: 0) }
        expectRefused(stopped, "reconnect") { _ = try $0.reconnect(brokerRequeued: false) }
        expectRefused(stopped, "connected") { _ = try $0.connected() }
        expectRefused(stopped, "fail") { _ = try $0.fail(.protocolMismatch("X")) }
    }
}
