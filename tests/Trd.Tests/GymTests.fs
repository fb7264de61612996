module Trd.Tests.GymTests
