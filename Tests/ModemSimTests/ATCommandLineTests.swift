import Testing
@testable import ModemSim

// Command line syntax: ITU-T V.250 §5.2 (basic and extended commands, ';' concatenation, quoted strings).
@Suite struct ATCommandLineTests {
    @Test func basicAndExtendedOnOneLine() throws {
        let cmds = try #require(ATCommandLine.parse("ATE0V1+CMGF=0;+CNMI=2,1,0,0,0"))
        #expect(cmds.map(\.name) == ["E", "V", "+CMGF", "+CNMI"])
        #expect(cmds[0].basicValue == 0 && cmds[1].basicValue == 1)
        #expect(cmds[3].args.map(\.text) == ["2", "1", "0", "0", "0"])
    }

    @Test func formsAndQuotes() throws {
        let cmds = try #require(ATCommandLine.parse("at+creg?;+cops=?;+qiopen=1,0,\"UDP SERVICE\",\"127.0.0.1\",0,3030,0"))
        #expect(cmds[0].name == "+CREG" && cmds[0].form == .read)
        #expect(cmds[1].name == "+COPS" && cmds[1].form == .test)
        #expect(cmds[2].string(2) == "UDP SERVICE" && cmds[2].args[2].quoted)
        #expect(cmds[2].int(5) == 3030)
        #expect(cmds[2].int(2) == nil) // a quoted argument is never a number
    }

    @Test func quotedSemicolonStaysInArgument() throws {
        let cmds = try #require(ATCommandLine.parse("AT+CSCA=\"+1;555\",145"))
        #expect(cmds.count == 1)
        #expect(cmds[0].string(0) == "+1;555")
    }

    @Test func sRegistersAndBareAT() throws {
        #expect(try #require(ATCommandLine.parse("AT")).isEmpty)
        let s = try #require(ATCommandLine.parse("ATS0=2S3?"))
        #expect(s.map(\.name) == ["S0", "S3"])
        #expect(s[0].form == .set && s[0].basicValue == 2 && s[1].form == .read)
    }

    @Test func nonATLinesAreNotCommands() {
        #expect(ATCommandLine.parse("hello") == nil)
        #expect(ATCommandLine.parse("A") == nil)
    }
}
