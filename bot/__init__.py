"""社区暖心助手: a Rasa-driven service that hands residents' requests to named party members."""
