import Foundation

/// Runs work one item at a time per device and devices side by side: a slow negotiation or fetch for one handset
/// holds only that handset's queue. The lock guards the queues only; it is never held while work runs.
/// Each device with work gets a thread of its own while it has work: a GCD pool is as wide as the machine has
/// cores, so two stalled devices on a 2-core box would hold every other device back until GCD grew the pool.
public final class DeviceSerializer: @unchecked Sendable {
    private let lock = NSLock()
    private var queues: [UInt64: [@Sendable () -> Void]] = [:]
    private var running = 0
    private let idle = NSCondition()

    public init() {}

    /// Items queued or running, over all devices.
    public var pending: Int { lock.withLock { running + queues.values.reduce(0) { $0 + $1.count } } }

    /// Queues `work` behind the device's earlier work; starts a worker for the device when it had none.
    public func submit(device: UInt64, _ work: @escaping @Sendable () -> Void) {
        let start = lock.withLock { () -> Bool in
            if queues[device] != nil { queues[device]!.append(work); return false }
            queues[device] = [work]
            return true
        }
        if start {
            let t = Thread { self.drain(device) }
            t.name = "device-\(String(device, radix: 16))"
            t.start()
        }
    }

    private func drain(_ device: UInt64) {
        while let work = lock.withLock({ () -> (@Sendable () -> Void)? in
            guard var q = queues[device], !q.isEmpty else { queues[device] = nil; return nil }
            let w = q.removeFirst()
            queues[device] = q
            running += 1
            return w
        }) {
            work()
            lock.withLock { running -= 1 }
            idle.broadcast()
        }
        idle.broadcast()
    }

    /// Waits until nothing is queued or running, at most `timeout` seconds; true when it got there.
    public func waitIdle(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        idle.lock()
        defer { idle.unlock() }
        while pending > 0 {
            if !idle.wait(until: min(deadline, Date().addingTimeInterval(0.05))), Date() >= deadline { return pending == 0 }
        }
        return true
    }
}
