module Trd.Tests.StudyTests
