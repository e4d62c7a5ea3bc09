//! The connector contract suite (`contract/suite.rs`) run against every connector's fake.

#[path = "contract/suite.rs"]
mod suite;

#[path = "contract/sandbox.rs"]
mod sandbox;
#[path = "contract/trendyol.rs"]
mod trendyol;

contract_tests!(sandbox_contract, sandbox::Scripted);
contract_tests!(trendyol_contract, trendyol::Trendyol);
