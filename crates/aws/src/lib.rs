//! sagebridge aws
