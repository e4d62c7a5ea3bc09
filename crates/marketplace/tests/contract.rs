//! The connector contract suite (`contract/suite.rs`) run against every connector's fake.

#[path = "contract/suite.rs"]
mod suite;

#[path = "contract/amazon.rs"]
mod amazon;
#[path = "contract/ebay.rs"]
mod ebay;
#[path = "contract/hepsiburada.rs"]
mod hepsiburada;
#[path = "contract/n11.rs"]
mod n11;
#[path = "contract/ozon.rs"]
mod ozon;
#[path = "contract/sandbox.rs"]
mod sandbox;
#[path = "contract/trendyol.rs"]
mod trendyol;

contract_tests!(sandbox_contract, sandbox::Scripted);
contract_tests!(trendyol_contract, trendyol::Trendyol);
contract_tests!(ozon_contract, ozon::Ozon);
contract_tests!(ebay_contract, ebay::Ebay);
contract_tests!(amazon_contract, amazon::Amazon);
contract_tests!(hepsiburada_contract, hepsiburada::Hepsiburada);
contract_tests!(n11_contract, n11::N11);
