//! sagebridge catalog
