import Testing
@testable import ModemSim

@Suite struct FaultPlanTests {
    @Test func parsesEveryTriggerForm() throws {
        let rules = try FaultPlan.parse("garbage@0.25, drop-final#3,slow-link=9600,delay-urc=200#2,sms-full")
        #expect(rules == [
            FaultRule(kind: .garbage, value: nil, trigger: .probability(0.25)),
            FaultRule(kind: .dropFinal, value: nil, trigger: .nth(3)),
            FaultRule(kind: .slowLink, value: 9600, trigger: .always),
            FaultRule(kind: .delayURC, value: 200, trigger: .nth(2)),
            FaultRule(kind: .smsFull, value: nil, trigger: .always),
        ])
    }

    @Test(arguments: ["bogus", "garbage@1.5", "garbage@x", "drop-final#0", "slow-link", "slow-link=-3", "garbage#"])
    func rejectsBadSpecs(spec: String) {
        #expect(throws: FaultSpecError.self) { try FaultPlan.parse(spec) }
    }

    @Test func rejectedSpecLeavesPlanEmpty() {
        let plan = (try? FaultPlan(spec: "garbage,nonsense")) ?? FaultPlan()
        #expect(plan.rules.isEmpty)
        #expect(!plan.isArmed(.garbage))
    }

    @Test func nthFiresExactlyOnce() throws {
        var plan = try FaultPlan(spec: "drop-final#3")
        let hits = (1...6).map { _ in plan.fires(.dropFinal) }
        #expect(hits == [false, false, true, false, false, false])
        #expect(plan.fired[.dropFinal] == 1)
        #expect(plan.fires(.garbage) == false) // not armed: never fires, never counted
        #expect(plan.fired[.garbage] == nil)
    }

    @Test func probabilityIsSeededAndRoughlyRight() throws {
        var a = try FaultPlan(spec: "garbage@0.3", seed: 42)
        var b = try FaultPlan(spec: "garbage@0.3", seed: 42)
        let ha = (0..<1000).map { _ in a.fires(.garbage) }
        let hb = (0..<1000).map { _ in b.fires(.garbage) }
        #expect(ha == hb)
        let n = ha.filter { $0 }.count
        #expect(n > 230 && n < 370)
    }

    @Test func parsesTheSMSCentreFaults() throws {
        let rules = try FaultPlan.parse("sms-loss@0.1,sms-duplicate#2,sms-reorder,reboot-between-parts#1,reboot-mid-sms=1")
        #expect(rules.map(\.kind) == [.smsLoss, .smsDuplicate, .smsReorder, .rebootBetweenParts, .rebootMidSMS])
        #expect(rules[4].value == 1)
        #expect(throws: FaultSpecError.self) { try FaultPlan.parse("sms-lost") }
    }

    @Test func addingARuleCountsItsTriggerFromNow() throws {
        var plan = try FaultPlan(spec: "sms-loss#5")
        let before = (0..<3).map { _ in plan.fires(.smsLoss) }
        #expect(before == [false, false, false])
        plan.add(FaultRule(kind: .smsLoss, value: nil, trigger: .nth(1)))
        let after = (0..<2).map { _ in plan.fires(.smsLoss) }
        #expect(after == [true, false])  // the next opportunity, not the first one ever
        #expect(plan.fired[.smsLoss] == 1)
        plan.remove(.smsLoss)
        let removed = plan.fires(.smsLoss)
        #expect(!removed && plan.fired[.smsLoss] == 1) // removed: never fires, count unchanged
    }

    @Test func garbageNeverSpellsAResult() {
        var plan = FaultPlan(seed: 7)
        for _ in 0..<50 { #expect(plan.garbageBytes().allSatisfy { $0 >= 0x80 }) }
    }
}
